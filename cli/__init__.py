"""metacond: metadata-conditioned language-model pretraining, Hugging Face-native.

The repository's folders install as subpackages: ``metacond.modeling``, ``metacond.data_builders``,
``metacond.training``, ``metacond.eval_tasks``, ``metacond.model_cards``. Imports stay lazy so that
``metacond --help`` answers at once.
"""

__version__ = "0.1.0"


class MetacondError(ValueError):
    """A user-facing error: the CLI prints its one-line message instead of a traceback."""
