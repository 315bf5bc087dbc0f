"""flowedu: reference code for the flowedu book on deep generative models.

Each module is the home of one chapter's concept (``flowedu.vae`` for ``book/vae.md`` and
``notebooks/vae*.ipynb``, and so on); ``flowedu.config`` and ``flowedu.data`` serve them all.
Submodules load on first use, so ``import flowedu`` is cheap and ``flowedu.checks.check_...`` works.
"""

import importlib
import pkgutil

__version__ = "0.1.0"

_SUBMODULES = frozenset(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))

__all__ = ["__version__", *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
