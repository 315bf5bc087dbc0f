"""Chapter: book/gan.md — the Dirac-GAN (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406, section 2.2).

Data ``p_D = δ_0``, generator ``p_θ = δ_θ``, linear critic ``D_ψ(x) = ψ x`` (the course's variant
``D(x) = ψ_0 x + ψ_1`` has a bias). The game value is

    L(θ, ψ) = f(D_ψ(θ)) + f(−D_ψ(0)) = f(ψθ) + f(0),

with ``f(t) = −log(1 + e^{−t})`` for the GAN (Jensen–Shannon, "jsd") loss, ``f'(0) = 1/2``, and
``f(t) = t`` for the Wasserstein-1 ("w1") loss, ``f'(0) = 1``. (Mescheder's critic is high on *fake*
points, the negative of the usual logit: nothing else changes.) The critic ascends ``L − R(ψ)``, the
generator descends ``L``; the gradient vector field is

    v(θ, ψ) = (−ψ f'(ψθ),  θ f'(ψθ) − R'(ψ)),

with ``R = 0`` (none), ``R = (γ/2) ψ²`` (R1: ``∇_x D = ψ`` on the data) or ``R = λ(|ψ| − 1)²``
(WGAN-GP: ``∇_x D = ψ`` everywhere). See ``book/gan.md`` for the Jacobian and its eigenvalues.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from flowedu.gan.penalties import gradient_penalty, r1_penalty
from flowedu.validate import integer, real

__all__ = [
    "DIRAC_LOSSES",
    "DIRAC_REGULARIZERS",
    "f_prime",
    "dirac_value",
    "dirac_vector_field",
    "dirac_vector_field_autograd",
    "jacobian_eigenvalues",
    "dirac_eigenvalues_formula",
    "simulate_dirac",
]

DIRAC_LOSSES = ("jsd", "w1")
DIRAC_REGULARIZERS = ("none", "r1", "gp")
UPDATES = ("simultaneous", "alternating")
EMA_ON = ("all", "generator")


def _check(loss: str, reg: str = "none", gamma: float = 0.0) -> float:
    if loss not in DIRAC_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(DIRAC_LOSSES)}, got {loss!r}")
    if reg not in DIRAC_REGULARIZERS:
        raise ValueError(f"reg must be one of {', '.join(DIRAC_REGULARIZERS)}, got {reg!r}")
    gamma = float(gamma)
    if not 0 <= gamma < math.inf:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma}")
    return gamma


def _f(t: torch.Tensor, loss: str) -> torch.Tensor:
    return F.logsigmoid(t) if loss == "jsd" else t


def f_prime(t: torch.Tensor | float, loss: str) -> torch.Tensor:
    """``f'(t)``: ``σ(−t) = 1/(1 + e^t)`` for "jsd", ``1`` for "w1".

    Args:
        t: any shape (a float is turned into a float64 tensor).
        loss: "jsd" or "w1".
    """
    _check(loss)
    t = torch.as_tensor(t, dtype=torch.float64) if not isinstance(t, torch.Tensor) else t
    return torch.sigmoid(-t) if loss == "jsd" else torch.ones_like(t)


def dirac_value(params: torch.Tensor, loss: str) -> torch.Tensor:
    """The game value ``L = f(ψ_0 θ + ψ_1) + f(−ψ_1)`` (``ψ_1 = 0`` without a bias).

    Args:
        params: ``[2]`` = (θ, ψ) or ``[3]`` = (θ, ψ_0, ψ_1).
        loss: "jsd" or "w1".

    Returns:
        A scalar tensor.
    """
    _check(loss)
    if params.shape not in ((2,), (3,)):
        raise ValueError(
            f"params must have shape [2] (theta, psi) or [3] (theta, psi0, psi1), got {tuple(params.shape)}"
        )
    theta, psi0 = params[0], params[1]
    psi1 = params[2] if len(params) == 3 else torch.zeros((), dtype=params.dtype, device=params.device)
    return _f(psi0 * theta + psi1, loss) + _f(-psi1, loss)


def dirac_vector_field(
    theta: torch.Tensor,
    psi: torch.Tensor,
    loss: str,
    reg: str = "none",
    gamma: float = 0.0,
    psi1: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """The closed-form vector field ``v = (−ψ f'(ψθ), θ f'(ψθ) − R'(ψ))`` (critic without bias).

    With a bias (the course's critic ``D(x) = ψ x + ψ_1``, pass ``psi1``) the value is
    ``f(ψθ + ψ_1) + f(−ψ_1)`` and the field has a third component
    ``v_{ψ_1} = f'(ψθ + ψ_1) − f'(−ψ_1)``; the penalties do not involve ``ψ_1`` (``∇_x D = ψ``).

    Args:
        theta, psi: tensors of the same (broadcastable) shape, e.g. a grid for a quiver plot.
        loss: "jsd" or "w1".
        reg: "none", "r1" (``R = (γ/2)ψ²``) or "gp" (``R = γ(|ψ| − 1)²``).
        gamma: the regularizer's coefficient (γ or λ) >= 0.
        psi1: the critic's bias ψ_1 (same shape), or ``None`` for the critic without bias.

    Returns:
        ``(v_theta, v_psi)``, or ``(v_theta, v_psi, v_psi1)`` with a bias, each of the broadcast shape.
    """
    gamma = _check(loss, reg, gamma)
    # [dirac-field] (book/gan.md shows the lines from here on)
    # D(θ) = ψθ (+ ψ_1): the critic at the generated point
    logit = psi * theta if psi1 is None else psi * theta + psi1
    fp = f_prime(logit, loss)
    v_theta = -psi * fp  # −∂L/∂θ = −ψ f'(ψθ)
    v_psi = theta * fp  # ∂L/∂ψ = θ f'(ψθ)
    if reg == "r1":
        v_psi = v_psi - gamma * psi  # −R'(ψ), R = (γ/2) ψ²
    elif reg == "gp":
        # −R'(ψ), R = γ(|ψ| − 1)², with sign(0) = 0
        v_psi = v_psi - 2 * gamma * (psi.abs() - 1) * torch.sign(psi)
    if psi1 is None:
        return v_theta, v_psi
    # with a bias: v_ψ1 = ∂L/∂ψ_1 = f'(ψθ + ψ_1) − f'(−ψ_1)
    return v_theta, v_psi, fp - f_prime(-psi1, loss)


def dirac_vector_field_autograd(params: torch.Tensor, loss: str, reg: str = "none", gamma: float = 0.0) -> torch.Tensor:
    """The vector field from the game value and flowedu's penalties, by autograd (no hand derivative).

    ``v = (−∂L/∂θ, ∂(L − R)/∂ψ)``, where ``R`` is :func:`~flowedu.gan.r1_penalty` or
    :func:`~flowedu.gan.gradient_penalty` of the critic ``x ↦ ψ_0 x + ψ_1`` on the data point 0.
    Differentiable again (``create_graph=True``), so :func:`jacobian_eigenvalues` can use it.

    Args:
        params: ``[2]`` = (θ, ψ) or ``[3]`` = (θ, ψ_0, ψ_1), floating point.

    Returns:
        ``[2]`` or ``[3]``, the same layout as ``params``.
    """
    gamma = _check(loss, reg, gamma)
    if not torch.is_floating_point(params):
        raise ValueError(f"params must be floating point, got {params.dtype}")
    if not params.requires_grad:
        params = params.detach().requires_grad_(True)
    value = dirac_value(params, loss)

    def critic(x):  # D(x) = ψ_0 x + ψ_1, x: [batch, 1]
        out = params[1] * x[:, 0]
        return out + params[2] if len(params) == 3 else out

    x_data = torch.zeros(1, 1, dtype=params.dtype, device=params.device)
    if reg == "r1":
        penalty = r1_penalty(critic, x_data, gamma)
    elif reg == "gp":
        x_fake = params[0].detach().reshape(1, 1)
        penalty = gradient_penalty(critic, x_data, x_fake, gamma)
    else:
        penalty = None
    (grad_value,) = torch.autograd.grad(value, params, create_graph=True)
    ascent = grad_value
    if penalty is not None:
        (grad_penalty,) = torch.autograd.grad(penalty, params, create_graph=True, materialize_grads=True)
        ascent = grad_value - grad_penalty
    return torch.cat([-grad_value[:1], ascent[1:]])


def jacobian_eigenvalues(
    field: Callable[[torch.Tensor], torch.Tensor], point: Sequence[float] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Jacobian of a vector field at a point, by autograd, and its eigenvalues.

    Args:
        field: ``p [d] -> v(p) [d]``, differentiable.
        point: ``[d]``; converted to float64.

    Returns:
        ``(jacobian [d, d] float64, eigenvalues [d] complex128)``.
    """
    point = torch.as_tensor(point, dtype=torch.float64).detach().clone()
    if point.dim() != 1 or len(point) == 0:
        raise ValueError(f"point must be a non-empty vector [d], got shape {tuple(point.shape)}")
    jac = torch.autograd.functional.jacobian(field, point)
    if jac.shape != (len(point), len(point)):
        raise ValueError(f"field must map [d] to [d], got a Jacobian of shape {tuple(jac.shape)}")
    return jac, torch.linalg.eigvals(jac)


def dirac_eigenvalues_formula(loss: str, reg: str = "none", gamma: float = 0.0) -> tuple[complex, complex]:
    """The derived eigenvalues of the Jacobian at the equilibrium (0, 0) (critic without bias).

    The Jacobian is ``[[0, −f'(0)], [f'(0), −γ]]`` (``γ = 0`` without R1), whose characteristic
    polynomial ``λ² + γλ + f'(0)²`` has roots ``−γ/2 ± sqrt(γ²/4 − f'(0)²)``: ``± i f'(0)`` without a
    regularizer, complex with real part ``−γ/2`` for ``γ < 2 f'(0)``, a double root at the critical
    ``γ = 2 f'(0)`` (1 for "jsd", 2 for "w1"), two negative reals above it.

    Raises:
        ValueError: for ``reg="gp"``, which is not differentiable at ψ = 0.
    """
    gamma = _check(loss, reg, gamma)
    if reg == "gp":
        raise ValueError("reg must be 'none' or 'r1' (the gradient penalty λ(|ψ|−1)² has no derivative at ψ = 0)")
    a = 0.5 if loss == "jsd" else 1.0
    g = gamma if reg == "r1" else 0.0
    root = cmath.sqrt(g * g / 4 - a * a)
    return (-g / 2 + root, -g / 2 - root)


def simulate_dirac(
    loss: str,
    reg: str = "none",
    gamma: float = 0.0,
    update: str = "simultaneous",
    step: float = 0.2,
    n_steps: int = 500,
    start: Sequence[float] = (1.0, 1.0),
    ema_beta: float | None = None,
    bias: bool = False,
    ema_on: str = "all",
) -> dict:
    """Gradient descent–ascent on the Dirac-GAN with the closed-form field.

    ``simultaneous``: ``(θ, ψ) += h v(θ, ψ)``. ``alternating``: the critic first,
    ``ψ += h v_ψ(θ, ψ)``, then the generator at the new critic, ``θ += h v_θ(θ, ψ)``.

    Args:
        loss, reg, gamma: see :func:`dirac_vector_field`.
        update: "simultaneous" or "alternating".
        step: the step size h > 0.
        n_steps: number of updates (a positive integer).
        start: (θ_0, ψ_0), or (θ_0, ψ_0, ψ_1) with ``bias``; with ``bias`` and two numbers, ψ_1 starts at 0.
        ema_beta: if given (in [0, 1)), also return the EMA of the iterates, started at ``start``.
        bias: the course's critic ``D(x) = ψ x + ψ_1`` (a third parameter) instead of ``ψ x``.
        ema_on: "all" (the book: average every parameter) or "generator" (the course: average θ only;
            the critic's parameters of ``ema_path`` are the raw iterates).

    Returns:
        dict with ``path`` ``[n_steps + 1, P]`` float64 (θ, ψ[, ψ_1]), P = 2 or 3, and, with ``ema_beta``,
        ``ema_path`` of the same shape; ``final_distance`` (the norm of the last point, the distance to
        the equilibrium 0) and ``generator_distance`` (``|θ|``, the generator's distance to the data)
        of the iterate and, if any, of the EMA (``ema_final_distance``, ``ema_generator_distance``).
    """
    gamma = _check(loss, reg, gamma)
    if update not in UPDATES:
        raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
    if not 0 < float(step) < math.inf:
        raise ValueError(f"step must be a finite number > 0, got {step}")
    n_steps = integer(n_steps, "n_steps", 1)
    if ema_beta is not None:
        ema_beta = real(ema_beta, "ema_beta", at_least=0, below=1)
    if ema_on not in EMA_ON:
        raise ValueError(f"ema_on must be one of {', '.join(EMA_ON)}, got {ema_on!r}")
    p = torch.as_tensor(start, dtype=torch.float64).clone()
    if bias and p.shape == (2,):
        p = torch.cat([p, p.new_zeros(1)])
    n_params = 3 if bias else 2
    if p.shape != (n_params,):
        expected = "(theta, psi) or (theta, psi, psi1)" if bias else "(theta, psi)"
        raise ValueError(f"start must be {expected}, got shape {tuple(p.shape)}")
    path = torch.empty(n_steps + 1, n_params, dtype=torch.float64)
    path[0] = p
    theta, psi = p[0], p[1]
    psi1 = p[2] if bias else None

    def field(theta, psi, psi1):
        v = dirac_vector_field(theta, psi, loss, reg, gamma, psi1)
        return v if bias else (*v, None)

    for t in range(1, n_steps + 1):
        if update == "simultaneous":
            v_theta, v_psi, v_psi1 = field(theta, psi, psi1)
            theta, psi = theta + step * v_theta, psi + step * v_psi
            psi1 = psi1 + step * v_psi1 if bias else None
        else:
            _, v_psi, v_psi1 = field(theta, psi, psi1)  # the critic moves first ...
            psi = psi + step * v_psi
            psi1 = psi1 + step * v_psi1 if bias else None
            theta = theta + step * field(theta, psi, psi1)[0]  # ... then the generator, against the new critic
        path[t, 0], path[t, 1] = theta, psi
        if bias:
            path[t, 2] = psi1
    if not torch.isfinite(path).all():
        raise FloatingPointError(f"the iterates overflowed ({loss}, {reg}, gamma={gamma}, step={step})")
    out = {"path": path, "final_distance": float(path[-1].norm()), "generator_distance": float(path[-1, 0].abs())}
    if ema_beta is not None:
        rows = path.tolist()  # the recursion on Python floats (float64, as the tensor ops would be)
        averaged = range(n_params) if ema_on == "all" else range(1)  # "generator": the critic stays raw
        for t in range(1, n_steps + 1):
            for j in averaged:
                rows[t][j] = ema_beta * rows[t - 1][j] + (1 - ema_beta) * rows[t][j]
        ema = torch.tensor(rows, dtype=torch.float64)
        out["ema_path"] = ema
        out["ema_final_distance"] = float(ema[-1].norm())
        out["ema_generator_distance"] = float(ema[-1, 0].abs())
    return out
