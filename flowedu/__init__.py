"""flowedu: reference code for the flowedu book on deep generative models.

Each subpackage is the home of one chapter (``flowedu.vae`` for ``book/vae.md`` and ``notebooks/vae*.ipynb``,
``flowedu.flows``, ``flowedu.hmc``, ``flowedu.proofs``, ``flowedu.gan``, ``flowedu.gk``); ``flowedu.config``,
``flowedu.data``, ``flowedu.validate``, ``flowedu.loops``, ``flowedu.nets``, ``flowedu.grids`` and
``flowedu.plots`` serve them all. Submodules load on first use (the explicit list below), so
``import flowedu`` is cheap and ``flowedu.checks.check_...`` works.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "checks", "config", "data", "distributions", "flows", "gan", "gk", "grade", "grids", "hmc", "loops",
    "metrics", "nets", "plots", "proofs", "vae", "validate",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
