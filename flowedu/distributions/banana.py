"""Old path of the banana posterior: a thin shim over :mod:`flowedu.hmc.banana`.

Chapter: book/hmc.md. Import from ``flowedu.hmc`` instead; this module goes away when the last
caller has moved (``flowedu.distributions`` re-exports these names meanwhile).
"""

from flowedu.hmc.banana import BANANA_SEED, BANANA_THETA, BananaGrid, BananaPosterior, banana_data

__all__ = ["BANANA_SEED", "BANANA_THETA", "BananaGrid", "BananaPosterior", "banana_data"]
