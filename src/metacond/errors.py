"""The one error type of metacond: user-facing, printed as one line instead of a traceback."""


class MetacondError(ValueError):
    """A user-facing error: the CLI prints its one-line message instead of a traceback."""
