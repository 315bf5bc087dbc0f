"""Device hazards (#11): the chapters' models and samplers run with every tensor on ``device="meta"``.

A meta tensor has a shape and a device but no values. Mixing it with a CPU tensor raises (the same
error a CUDA run would give), and so does ``.numpy()`` or ``.item()``; so a forward pass, a loss or a
sampler that works here creates its tensors on its inputs' device and reads nothing back to the host.
CPU generators stay allowed: their draws are made on the CPU and moved (``flowedu.vae.parts.draw``),
which is what a CUDA run needs as well.
"""

import pytest
import torch

from flowedu import flows, gan
from flowedu.distributions.elementary import skip_value_checks
from flowedu.vae import iwae_bound, make_vae

META = torch.device("meta")


def on_meta(*tensors):
    for t in tensors:
        assert t.device.type == "meta", f"a result left the device: {t.device}"


@pytest.mark.parametrize("likelihood", ["bernoulli", "categorical"])
def test_vae_elbo_iwae_and_sampling_stay_on_the_device(likelihood):
    vae = make_vae((1, 8, 8), 2, likelihood, (32,)).to(META)
    x = torch.zeros(5, 1, 8, 8, device=META)
    g = torch.Generator().manual_seed(0)
    # The decoders check their data's values (a host read); train_vae checks the data set once and
    # runs its batches under skip_value_checks, as here.
    with skip_value_checks():
        on_meta(vae.elbo(x), iwae_bound(vae, x, 3, generator=g), vae.sample(4, generator=g),
                vae.sample(4, mean=False, generator=g), vae.reconstruct(x))


@pytest.mark.parametrize("stack", ["realnvp", "nice", "planar"])
def test_flows_sample_and_density_stay_on_the_device(stack):
    layers = {"realnvp": lambda: flows.realnvp(2, n_couplings=2, hidden=8),
              "nice": lambda: flows.nice(2, n_couplings=2, hidden=8),
              "planar": lambda: flows.planar(2, 3)}[stack]()
    flow = flows.NormalizingFlow(flows.StandardNormal(2), layers).to(META)
    x = torch.zeros(6, 2, device=META)
    sample, log_q = flow.sample_and_log_prob(4)
    on_meta(flow.log_prob(x), sample, log_q)


def test_gan_models_losses_and_penalties_stay_on_the_device():
    generator = gan.DCGANGenerator(16, (1, 28, 28)).to(META)
    critic = gan.DCGANCritic((1, 28, 28)).to(META)
    z = gan.sample_latent(3, 16, device=META, generator=torch.Generator().manual_seed(0))
    fake = generator(z)
    real = torch.zeros(3, 1, 28, 28, device=META)
    losses = [gan.critic_loss(critic(real), critic(fake), loss) for loss in gan.GAN_LOSSES]
    on_meta(z, fake, *losses, gan.generator_loss(critic(fake), "jsd"), gan.r1_penalty(critic, real, 1.0))
