"""Deprecated location: the proofs chapter's code now lives in :mod:`flowedu.proofs` (``book/proofs.md``).

A thin shim kept while other code moves over; import from ``flowedu.proofs`` instead.
"""

from flowedu.proofs.markov import *  # noqa: F403
from flowedu.proofs.markov import __all__  # noqa: F401
