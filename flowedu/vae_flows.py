"""Chapter: book/gk.md — deprecated location of the flow-VAE code, now :mod:`flowedu.gk.vae_flows`.

A thin shim so that old imports keep working; it will be removed.
"""

from flowedu.gk.vae_flows import AmortisedPlanar, FlowVAE, GandKPrior

__all__ = ["AmortisedPlanar", "FlowVAE", "GandKPrior"]
