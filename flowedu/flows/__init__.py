"""Chapter: book/flows.md — normalizing flows: invertible layers with exact log-determinants.

Contract (as in normflows): ``forward(z)`` and ``inverse(z)`` each return ``(z_new, log_det)`` with
``log_det: [batch]``. ``forward`` maps base samples to data (sampling, variational inference);
``inverse`` maps data to the base (density estimation). ``NormalizingFlow(base, *layers)`` is a
distribution with ``sample``, ``rsample``, ``log_prob`` and ``sample_and_log_prob``.

Building the classic stacks::

    from flowedu import flows
    nice = flows.NormalizingFlow(flows.StandardNormal(2), flows.nice(2, n_couplings=4, hidden=16))
    realnvp = flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, n_couplings=4, hidden=16))
    planar_vi = flows.NormalizingFlow(flows.StandardNormal(2), flows.planar(2, 8))
    planar_density = flows.NormalizingFlow(flows.StandardNormal(2), flows.planar(2, 8, inverse=True))

Independent copies side by side (one batched model, e.g. one planar flow per target)::

    four = flows.NormalizingFlow(flows.StandardNormal(2, copies=4), flows.planar(2, 8, copies=4))
    x, log_q = four.sample_and_log_prob(256)  # [256, 4, 2], [256, 4]
"""

from flowedu.flows.base import FlowLayer, Inverse, NormalizingFlow, SequentialFlow, StandardNormal
from flowedu.flows.coupling import AdditiveCoupling, AffineCoupling, checkerboard_masks, nice, realnvp
from flowedu.flows.elementwise import Scale, Translate
from flowedu.flows.planar import PlanarFlow, planar, planar_forward, planar_inverse, planar_u_hat
from flowedu.flows.radial import RadialFlow, radial_forward, radial_inverse, radial_root
from flowedu.flows.structure import Merge, Permute, Split, Swap
from flowedu.flows.training import fit_density

__all__ = [
    "FlowLayer", "Inverse", "SequentialFlow", "StandardNormal", "NormalizingFlow",
    "Scale", "Translate", "Split", "Merge", "Swap", "Permute",
    "AdditiveCoupling", "AffineCoupling", "nice", "realnvp", "checkerboard_masks",
    "PlanarFlow", "planar", "planar_u_hat", "planar_forward", "planar_inverse",
    "RadialFlow", "radial_forward", "radial_inverse", "radial_root",
    "fit_density",
]
