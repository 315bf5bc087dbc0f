"""Chapter: book/gan.md — the GAN training loop: JSD (non-saturating) or W1 losses, R1/GP penalties, n critic steps,
simultaneous or alternating updates, generator EMA, periodic evaluation (``book/gan.md``).

The per-step losses stay on the training device and are read back in bulk at the evaluation points and
at the end, so a GPU is not made to wait for the host once per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from flowedu.gan.ema import EMA
from flowedu.gan.models import sample_latent
from flowedu.gan.penalties import gradient_penalty, r1_penalty
from flowedu.loops import History, LossLog, batch_cycle, seeded_generator
from flowedu.validate import integer, real

__all__ = ["GAN_LOSSES", "GAN_REGULARIZERS", "critic_loss", "generator_loss", "train_gan"]

GAN_LOSSES = ("jsd", "w1")
GAN_REGULARIZERS = ("none", "r1", "gp")


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """The critic's loss (to minimise), from its scores ``d_real [batch]``, ``d_fake [batch]``.

    "jsd": ``−E log σ(D(x)) − E log(1 − σ(D(G(z))))`` = ``E softplus(−D(x)) + E softplus(D(G(z)))``;
    its minimum over D is ``log 4 − 2 JSD(p_D ‖ p_θ)`` (Goodfellow et al. 2014).
    "w1": ``E D(G(z)) − E D(x)``, minus the Kantorovich–Rubinstein estimate of W1 for a 1-Lipschitz D.
    """
    if loss == "jsd":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "w1":
        return d_fake.mean() - d_real.mean()
    raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {loss!r}")


def generator_loss(d_fake: torch.Tensor, loss: str, per_example: bool = False) -> torch.Tensor:
    """The generator's loss: non-saturating ``E softplus(−D(G(z)))`` for "jsd", ``−E D(G(z))`` for "w1".

    Args:
        d_fake: the critic's scores ``[batch]`` of generated samples.
        loss: "jsd" or "w1".
        per_example: return the ``[batch]`` terms instead of their mean.
    """
    if loss == "jsd":
        terms = F.softplus(-d_fake)
    elif loss == "w1":
        terms = -d_fake
    else:
        raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {loss!r}")
    return terms if per_example else terms.mean()


def _penalty(critic, x_real, x_fake, reg, gamma, rng):
    if reg == "r1":
        return r1_penalty(critic, x_real, gamma)
    if reg == "gp":
        return gradient_penalty(critic, x_real, x_fake, gamma, generator=rng)
    return torch.zeros((), device=x_real.device)


def train_gan(
    generator_net: torch.nn.Module,
    critic: torch.nn.Module,
    x_train: torch.Tensor,
    steps: int,
    loss: str = "jsd",
    reg: str = "none",
    gamma: float = 0.0,
    n_critic: int = 1,
    update: str = "alternating",
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    ema_beta: float | None = None,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    eval_every: int = 0,
    keep_best: str | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> History:
    """Train a GAN with Adam; one "step" is one generator update.

    Alternating: ``n_critic`` critic updates on fresh batches, then one generator update against the
    updated critic. Simultaneous (``n_critic = 1`` only): both gradients at the same point, then
    both updates.

    Args:
        generator_net: the generator network ``z [batch, latent_dim] -> x``; must have ``latent_dim``.
        critic: ``x -> [batch]`` scores.
        x_train: real data ``[n, ...]`` (images ``[n, C, H, W]`` or points ``[n, d]``) on the training device.
        steps: generator updates (positive integer): optimiser steps of the generator.
        loss: "jsd" (non-saturating) or "w1".
        reg: "none", "r1" (``(γ/2) E‖∇D(x)‖²`` on real data) or "gp" (``γ E(‖∇D(x̂)‖ − 1)²``).
        gamma: the penalty coefficient >= 0.
        n_critic: critic updates per generator update.
        update: "alternating" or "simultaneous".
        batch_size, lr, betas: mini-batch size and Adam's settings (for both players).
        ema_beta: if given, keep an :class:`EMA` of the generator with this β.
        evaluate: ``module -> dict of numbers``, called every ``eval_every`` steps and at the end on
            the generator (and, if any, on its EMA; keys prefixed ``ema_``), in eval mode.
        eval_every: evaluation period in steps (0: only at the end, if ``evaluate`` is given).
        keep_best: a key of ``evaluate``'s dict (lower is better, e.g. ``"fcd"``): keep a copy of the
            raw generator's state at its best evaluation (what "best during training" reports).
        generator: CPU generator for all the randomness: the batches, the latents and the GP's
            interpolation (default: a fresh one seeded with 0, so a run is reproducible).
        progress: show a tqdm bar.
        seed: older spelling of ``generator=torch.Generator().manual_seed(seed)`` (kept for old calls).

    Returns:
        :class:`~flowedu.loops.History` with ``steps``, ``seconds``, ``d_loss`` and ``g_loss`` (lists, one
        float per step; ``d_loss`` without the penalty),
        ``evals`` (list of dicts with ``step``), ``ema`` (the :class:`EMA` or ``None``) and, with
        ``keep_best``, ``best`` = ``{"step", "value", "state"}`` (``state``: a ``state_dict`` copy).

    Raises:
        NonFiniteLossError: at the first non-finite loss, naming its step (checked after every step on the
            CPU; on a GPU every 100 steps, at every evaluation and at the end).
    """
    if loss not in GAN_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {loss!r}")
    if reg not in GAN_REGULARIZERS:
        raise ValueError(f"reg must be one of {', '.join(GAN_REGULARIZERS)}, got {reg!r}")
    gamma = real(gamma, "gamma", at_least=0)
    if update not in ("alternating", "simultaneous"):
        raise ValueError(f"update must be 'alternating' or 'simultaneous', got {update!r}")
    for name, value in (("steps", steps), ("n_critic", n_critic), ("batch_size", batch_size)):
        integer(value, name, 1)
    if update == "simultaneous" and n_critic != 1:
        raise ValueError(f"n_critic must be 1 for simultaneous updates, got {n_critic}")
    eval_every = integer(eval_every, "eval_every", 0)
    lr = real(lr, "lr", above=0)
    if keep_best is not None and evaluate is None:
        raise ValueError("keep_best needs an evaluate function")

    device = x_train.device
    rng, start = seeded_generator(generator, seed), time.perf_counter()
    real_batches = batch_cycle(x_train, batch_size, rng, "x_train")
    opt_g = torch.optim.Adam(generator_net.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    ema = EMA(generator_net, ema_beta) if ema_beta is not None else None
    # Per-step losses stay on the device; they are read back at the evaluation points and at the end.
    losses = LossLog(("d_loss", "g_loss"), steps, device)
    history = {"evals": [], "ema": ema}
    what = f"{loss}+{reg}"

    def run_eval(step):
        losses.check(step, what)
        if evaluate is None:
            return
        generator_net.eval()
        with torch.no_grad():
            record = {"step": step, **evaluate(generator_net)}
            if ema is not None:
                record.update({f"ema_{k}": v for k, v in evaluate(ema.module).items()})
        generator_net.train()
        history["evals"].append(record)
        if keep_best is not None:
            if keep_best not in record:
                raise ValueError(f"keep_best must be a key of evaluate's result, got {keep_best!r}")
            if "best" not in history or record[keep_best] < history["best"]["value"]:
                state = {k: v.detach().clone() for k, v in generator_net.state_dict().items()}
                history["best"] = {"step": step, "value": record[keep_best], "state": state}

    def latent():
        return sample_latent(batch_size, generator_net.latent_dim, device, rng)

    generator_net.train()
    critic.train()
    for step in tqdm(range(1, steps + 1), desc=what, disable=not progress, leave=False):
        if update == "alternating":
            for _ in range(n_critic):
                x_real = next(real_batches)
                with torch.no_grad():
                    x_fake = generator_net(latent())
                d_loss = critic_loss(critic(x_real), critic(x_fake), loss)
                opt_d.zero_grad(set_to_none=True)
                (d_loss + _penalty(critic, x_real, x_fake, reg, gamma, rng)).backward()
                opt_d.step()
            x_fake = generator_net(latent())
            g_loss = generator_loss(critic(x_fake), loss)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        else:
            x_real = next(real_batches)
            x_fake = generator_net(latent())
            d_loss = critic_loss(critic(x_real), critic(x_fake.detach()), loss)
            g_loss = generator_loss(critic(x_fake), loss)
            g_params = [p for p in generator_net.parameters() if p.requires_grad]
            g_grads = torch.autograd.grad(g_loss, g_params)
            opt_d.zero_grad(set_to_none=True)
            (d_loss + _penalty(critic, x_real, x_fake.detach(), reg, gamma, rng)).backward()
            for p, g in zip(g_params, g_grads, strict=True):
                p.grad = g
            opt_d.step()
            opt_g.step()
        if ema is not None:
            ema.update(generator_net)
        losses.record(step - 1, d_loss=d_loss, g_loss=g_loss)
        losses.maybe_check(step, what)
        if eval_every and step % eval_every == 0 and step != steps:
            run_eval(step)
    run_eval(steps)
    history.update(losses.tolist())
    return History(history, steps=steps, seconds=time.perf_counter() - start)
