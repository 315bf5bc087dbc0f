"""Chapter: book/vae.md — variational autoencoders (notebooks/vae*.ipynb): parts, model, bounds, training,
the course mistakes kept runnable (``mistakes``) and a memorising baseline (``memoriser``)."""

from flowedu.vae import memoriser, mistakes
from flowedu.vae.model import VAE, iwae_bound, log_likelihood, reparameterize
from flowedu.vae.parts import (
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianEncoder,
    MixturePrior,
    StandardNormalPrior,
    VampPrior,
    mlp,
)
from flowedu.vae.training import evaluate_elbo, gradient_samples, load_vae_data, make_vae, train_vae

__all__ = ["VAE", "iwae_bound", "log_likelihood", "reparameterize", "BernoulliDecoder", "CategoricalDecoder",
           "GaussianEncoder", "MixturePrior", "StandardNormalPrior", "VampPrior", "mlp", "evaluate_elbo",
           "gradient_samples", "train_vae", "make_vae", "load_vae_data", "memoriser", "mistakes"]
