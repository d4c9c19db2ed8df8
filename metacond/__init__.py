"""metacond: metadata-conditioned language-model pretraining, Hugging Face-native.

This folder is the root package: the error type every part raises (``errors``), config parsing
(``config``), the command dispatcher (``main``) and the figure helper (``figures``). The repository's
product folders install as its subpackages: ``metacond.modeling``, ``metacond.data_builders``,
``metacond.training``, ``metacond.eval_tasks``, ``metacond.model_cards``. Imports stay lazy so that
``metacond --help`` answers at once.
"""

from pathlib import Path as _Path

from .errors import MetacondError

# In a source checkout the product folders (data_builders/, training/, ...) sit beside this one, and this folder
# shadows an installed copy whenever the checkout is the working directory (`python -m metacond` from the root).
# Searching the checkout root for subpackages makes `metacond.data_builders` resolve to ../data_builders there;
# an installed wheel has them inside this folder and never takes this branch.
if (_Path(__file__).resolve().parent.parent / "data_builders" / "__init__.py").is_file():
    __path__.append(str(_Path(__file__).resolve().parent.parent))  # noqa: F821 (a package's own __path__)

__version__ = "0.1.0"
__all__ = ["MetacondError", "__version__"]
