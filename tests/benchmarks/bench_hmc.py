"""Banana posterior: min-ESS per second of flowedu.hmc.hmc against three baselines, and the wall time for a
flow to reach exact KL <= 0.02.

Samplers (each timed with its warm-up; ESS is flowedu.hmc.ess, split chains as in Vehtari et al. 2021, of
the kept draws, the minimum over theta_1 and theta_2):

* NumPy, single chain, in the style of the course's problem-set solution (L = 100, eps = 0.05, from
  (0, 0)) but correct: a rejection repeats the state;
* flowedu.hmc.hmc, 1000 chains as rows of one tensor, L = 15, dual averaging; autograd and hand gradient;
* Pyro's NUTS, 4 chains one after another (PyTorch);
* NumPyro's NUTS on JAX (CPU), chains vectorised (``chain_method="vectorized"``), float64; reported
  with and without the one-off JIT compilation, for a few chain counts.
"""

import time

import numpy as np
import torch

from common import report
from flowedu import flows, hmc

torch.set_num_threads(1)
post = hmc.BananaPosterior(hmc.banana_data(100))
log_z = post.grid(300).log_z
Y = post.y.numpy()
N, SIGMA_Y = len(Y), 2.0


def numpy_log_prob_grad(theta):
    """Course style: the likelihood summed over the data at every call."""
    m = theta[0] + theta[1] ** 2
    resid = Y - m
    lp = -0.5 * np.sum(resid**2) / SIGMA_Y**2 - 0.5 * theta @ theta
    lam = np.sum(resid) / SIGMA_Y**2
    return lp, np.array([lam - theta[0], 2 * theta[1] * lam - theta[1]])


def numpy_hmc(n_iter=1000, n_burn=500, eps=0.05, n_leapfrog=100, seed=0):
    """A straightforward single-chain NumPy HMC from (0, 0) (correct: a rejection repeats the state)."""
    rng = np.random.default_rng(seed)
    theta = np.zeros(2)
    lp, grad = numpy_log_prob_grad(theta)
    draws = []
    for it in range(n_iter):
        rho0 = rng.standard_normal(2)
        th, rho, g = theta.copy(), rho0 + 0.5 * eps * grad, grad
        for step in range(n_leapfrog):
            th = th + eps * rho
            lp_new, g = numpy_log_prob_grad(th)
            rho = rho + (eps if step < n_leapfrog - 1 else 0.5 * eps) * g
        if np.log(rng.uniform()) < (lp_new - 0.5 * rho @ rho) - (lp - 0.5 * rho0 @ rho0):
            theta, lp, grad = th, lp_new, g
        if it >= n_burn:
            draws.append(theta.copy())
    return np.array(draws)[None]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def min_ess_per_s(samples, seconds):
    return float(hmc.ess(samples).min() / seconds)


# (a) NumPy, problem-set style: 4 independent runs, pooled ESS/s from their total time
numpy_runs = [timed(lambda s=s: numpy_hmc(seed=s)) for s in range(4)]
numpy_samples = np.concatenate([r[0] for r in numpy_runs])
numpy_rate = min_ess_per_s(numpy_samples, sum(r[1] for r in numpy_runs))

# (b) flowedu: 1000 chains, L = 15, dual averaging; autograd gradient (the default) and the hand one
init = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
rates = {}
for name, grad in (("autograd", None), ("hand_gradient", post.grad_log_prob)):
    result, seconds = timed(lambda grad=grad: hmc.hmc(post.log_prob, init, 0.1, 15, 500, 500, grad_log_prob=grad,
                                                      generator=torch.Generator().manual_seed(2)))
    rates[name] = min_ess_per_s(result.samples, seconds)
    rates[name + "_rhat"] = float(hmc.split_rhat(result.samples).max())

# (c) Pyro NUTS, 4 chains run one after another (500 warm-up + 500 draws each)
try:
    import pyro
    from pyro.infer import MCMC, NUTS

    def potential(params):
        return -post.log_prob(params["theta"].double())

    pyro_draws, pyro_seconds = [], 0.0
    for chain in range(4):
        pyro.set_rng_seed(chain)
        kernel = NUTS(potential_fn=potential, target_accept_prob=0.8)
        sampler = MCMC(kernel, num_samples=500, warmup_steps=500,
                       initial_params={"theta": torch.tensor([-1.0, 1.5], dtype=torch.float64)},
                       disable_progbar=True)
        _, seconds = timed(sampler.run)
        pyro_seconds += seconds
        pyro_draws.append(sampler.get_samples()["theta"].numpy())
    pyro_rate = min_ess_per_s(np.stack(pyro_draws), pyro_seconds)
    pyro_version = pyro.__version__
except ImportError:
    pyro_rate, pyro_version = None, None

# (d) NumPyro NUTS on CPU JAX, chains vectorised, float64
numpyro_figures = {}
try:
    import jax
    import numpyro

    numpyro.set_platform("cpu")
    numpyro.enable_x64()
    import jax.numpy as jnp
    from numpyro.infer import MCMC as NumPyroMCMC
    from numpyro.infer import NUTS as NumPyroNUTS

    y_jax = jnp.asarray(Y)

    def jax_potential(theta):
        m = theta[0] + theta[1] ** 2
        return 0.5 * jnp.sum((y_jax - m) ** 2) / SIGMA_Y**2 + 0.5 * theta @ theta

    for chains in (4, 100, 1000):
        sampler = NumPyroMCMC(NumPyroNUTS(potential_fn=jax_potential, target_accept_prob=0.8), num_warmup=500,
                              num_samples=500, num_chains=chains, chain_method="vectorized", progress_bar=False)
        starts = jnp.asarray(np.random.default_rng(chains).standard_normal((chains, 2)))
        for run in ("cold", "warm"):  # the first run includes the JIT compilation
            _, seconds = timed(lambda sampler=sampler, starts=starts, run=run: (
                sampler.run(jax.random.PRNGKey(0 if run == "cold" else 1), init_params=starts),
                jax.block_until_ready(sampler.get_samples(group_by_chain=True))))
            draws = np.asarray(sampler.get_samples(group_by_chain=True))
            numpyro_figures[f"numpyro_nuts_{chains}_chains_{run}"] = round(min_ess_per_s(draws, seconds), 1)
    numpyro_version, jax_version = numpyro.__version__, jax.__version__
except ImportError:
    numpyro_version, jax_version = None, None

report("hmc.banana_min_ess_per_s", flowedu_autograd=round(rates["autograd"]), flowedu_hand_gradient=round(
    rates["hand_gradient"]), numpy_problem_set_style=round(numpy_rate), pyro_nuts=None if pyro_rate is None else round(
    pyro_rate, 1), pyro=pyro_version, **numpyro_figures, numpyro=numpyro_version, jax=jax_version,
    ratio_vs_numpy=round(rates["autograd"] / numpy_rate, 1),
    ratio_vs_pyro=None if pyro_rate is None else round(rates["autograd"] / pyro_rate, 1),
    ratio_vs_best_numpyro_warm=round(rates["autograd"] / max(v for k, v in numpyro_figures.items()
                                                             if k.endswith("warm")), 2) if numpyro_figures else None,
    flowedu_rhat=round(max(rates["autograd_rhat"], rates["hand_gradient_rhat"]), 4), chains=1000)


# Flows: training wall time until the exact KL (log Z - ELBO, 20,000 draws) is <= 0.02, checked every
# 100 steps (checking time excluded). Best flow (RealNVP, better settings) vs the problem-set solution's
# settings (2 x 32 coupling networks, S = 100, constant lr 1e-3, weight decay 1e-5).
def time_to_kl(hidden, n_samples, lr, cosine, clip, max_steps, weight_decay=0.0, target=0.02):
    torch.manual_seed(0)
    flow = flows.NormalizingFlow(flows.StandardNormal(2), flows.realnvp(2, n_couplings=4, hidden=hidden))
    checking = {"seconds": 0.0, "kl": None}

    def stop(step):
        if step % 100:
            return False
        start = time.perf_counter()
        with torch.no_grad():
            _, terms = hmc.elbo_terms(flow, post.log_prob, 20_000)
        checking["kl"] = log_z - terms.mean().item()
        checking["seconds"] += time.perf_counter() - start
        return checking["kl"] <= target

    run = hmc.fit_elbo(flow, post.log_prob, max_steps, n_samples, lr=lr, cosine=cosine, clip=clip, progress=False,
                       stop=stop, weight_decay=weight_decay)
    reached = checking["kl"] is not None and checking["kl"] <= target
    return (round(run["seconds"] - checking["seconds"], 2) if reached else None), run["steps"], checking["kl"]


best_s, best_steps, best_kl = time_to_kl(32, 256, 5e-3, True, 10.0, 3000)
course_s, course_steps, course_kl = time_to_kl(32, 100, 1e-3, False, None, 10_000, weight_decay=1e-5)
report("hmc.banana_flow_seconds_to_kl_0.02", best_flow_s=best_s, best_flow_steps=best_steps,
       best_flow_kl=round(best_kl, 4), solution_settings_s=course_s, solution_settings_steps=course_steps,
       solution_settings_kl=round(course_kl, 4),
       speedup=None if (best_s is None or course_s is None) else round(course_s / best_s, 1))
