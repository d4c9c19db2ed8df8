"""metacond: metadata-conditioned language-model pretraining, Hugging Face-native.

This folder is the root package: the error type every part raises (``errors``), config parsing
(``config``), the command dispatcher (``main``) and the figure helper (``figures``). The repository's
product folders install as its subpackages (``setup.py``): ``metacond.modeling``, ``metacond.data_builders``,
``metacond.training``, ``metacond.eval_tasks``, ``metacond.model_cards`` and ``metacond.studies``.
Imports stay lazy so that ``metacond --help`` answers at once.
"""

from .errors import MetacondError

__version__ = "0.1.0"
__all__ = ["MetacondError", "__version__"]
