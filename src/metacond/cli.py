"""How every command runs: a user-facing error is one line on stderr, never a traceback.

Bottom layer (beside ``errors``), so each command module's ``__main__`` block can use it without importing the
dispatcher above it.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from metacond.errors import MetacondError


def closed_pipe() -> int:
    """The reader of our output went away (``metacond --help | head``): stop quietly, as command-line tools do."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush would raise again
    return 141  # 128 + SIGPIPE, the shell's status for a command stopped by a closed pipe


def run_guarded(fn: Callable[[list[str]], int | None], argv: Sequence[str], prog: str) -> int:
    """Run a command; user-facing errors become one line on stderr and exit status 2."""
    try:
        rc = fn(list(argv))
    except MetacondError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return closed_pipe()
    return int(rc or 0)
