"""Dirac-GAN: closed-form field = autograd field, Jacobian eigenvalues = derived formulas, dynamics."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu.gan import (
    EMA,
    dirac_eigenvalues_formula,
    dirac_vector_field,
    dirac_vector_field_autograd,
    ema_gain,
    ema_update,
    gradient_penalty,
    jacobian_eigenvalues,
    r1_penalty,
    simulate_dirac,
)

REGS = (("none", 0.0), ("r1", 0.1), ("r1", 1.0), ("gp", 0.1))
CONFIGS = [(loss, reg, g) for loss in ("jsd", "w1") for reg, g in REGS]


@settings(max_examples=30, deadline=None)
@given(theta=st.floats(-3, 3), psi=st.floats(-3, 3).filter(lambda v: abs(v) > 1e-6),
       index=st.integers(0, len(CONFIGS) - 1))
def test_closed_form_field_equals_autograd_field(theta, psi, index):
    loss, reg, gamma = CONFIGS[index]
    p = torch.tensor([theta, psi], dtype=torch.float64)
    auto = dirac_vector_field_autograd(p, loss, reg, gamma)
    closed = torch.stack(dirac_vector_field(p[0], p[1], loss, reg, gamma))
    torch.testing.assert_close(auto.detach(), closed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["jsd", "w1"])
@pytest.mark.parametrize("gamma", [0.0, 0.01, 0.1, 0.5, 1.0, 2.0, 3.0])
def test_jacobian_eigenvalues_match_the_formula(loss, gamma):
    reg = "r1" if gamma > 0 else "none"
    jac, eig = jacobian_eigenvalues(lambda q: dirac_vector_field_autograd(q, loss, reg, gamma), [0.0, 0.0])
    fp0 = 0.5 if loss == "jsd" else 1.0
    torch.testing.assert_close(jac, torch.tensor([[0.0, -fp0], [fp0, -gamma]], dtype=torch.float64))
    expected = sorted(dirac_eigenvalues_formula(loss, reg, gamma), key=lambda z: (z.real, z.imag))
    got = sorted((complex(z) for z in eig.tolist()), key=lambda z: (z.real, z.imag))
    for a, b in zip(got, expected, strict=True):
        assert abs(a - b) < 1e-6, (got, expected)
    if gamma == 0:
        assert all(abs(z.real) < 1e-12 and math.isclose(abs(z.imag), fp0) for z in got)


def test_critical_gamma_is_two_f_prime_zero():
    for loss, critical in (("jsd", 1.0), ("w1", 2.0)):
        a, b = dirac_eigenvalues_formula(loss, "r1", critical)
        assert a == b and a.imag == 0 and a.real == -critical / 2
        below = dirac_eigenvalues_formula(loss, "r1", 0.9 * critical)
        above = dirac_eigenvalues_formula(loss, "r1", 1.1 * critical)
        assert below[0].imag != 0 and above[0].imag == 0


def test_bias_adds_a_stable_direction_for_jsd():
    _, eig = jacobian_eigenvalues(lambda q: dirac_vector_field_autograd(q, "jsd", "none"), [0.0, 0.0, 0.0])
    reals = sorted(z.real for z in eig.tolist())
    assert reals[0] == pytest.approx(-0.5) and abs(reals[1]) < 1e-12 and abs(reals[2]) < 1e-12


def test_unregularised_simultaneous_diverges_alternating_stays_bounded():
    for loss in ("jsd", "w1"):
        sim = simulate_dirac(loss, "none", update="simultaneous", n_steps=500)
        alt = simulate_dirac(loss, "none", update="alternating", n_steps=500)
        assert sim["final_distance"] > 2 * math.sqrt(2), (loss, sim["final_distance"])
        radii = alt["path"].norm(dim=1)
        assert radii.max() < 2.0 and radii[-100:].min() > 0.5


def test_r1_with_gamma_one_converges():
    out = simulate_dirac("jsd", "r1", 1.0, n_steps=500)
    assert out["final_distance"] < 1e-3


def test_simultaneous_r1_stability_threshold_h_below_gamma_over_fprime0_squared():
    # |1 + hλ|² = 1 − hγ + h² f'(0)²: stable iff h < γ / f'(0)² (for γ < 2 f'(0)).
    assert simulate_dirac("jsd", "r1", 0.1, step=0.3, n_steps=2000)["final_distance"] < 1e-2
    # Above the threshold the linearisation spirals out; f' saturates, so the orbit stays finite.
    assert simulate_dirac("jsd", "r1", 0.1, step=0.5, n_steps=2000)["final_distance"] > 0.5


def test_gp_does_not_converge_to_the_equilibrium():
    out = simulate_dirac("w1", "gp", 0.1, update="alternating", n_steps=1000)
    assert out["final_distance"] > 0.5


def test_ema_reduces_the_final_radius():
    out = simulate_dirac("jsd", "none", update="alternating", n_steps=500, ema_beta=0.99)
    assert out["ema_final_distance"] < 0.3 * out["final_distance"]


def test_penalties_are_zero_at_the_equilibrium():
    psi = torch.zeros((), dtype=torch.float64, requires_grad=True)
    x0 = torch.zeros(4, 1, dtype=torch.float64)

    def critic(x):
        return psi * x[:, 0]

    assert r1_penalty(critic, x0, 1.0).item() == 0.0
    psi1 = torch.ones((), dtype=torch.float64)  # GP is zero where the gradient norm is 1
    assert gradient_penalty(lambda x: psi1 * x[:, 0], x0, x0 + 1, 1.0).item() == 0.0


def test_bad_coefficients_raise():
    critic = torch.nn.Linear(2, 1)
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="gamma"):
        r1_penalty(critic, x, -0.1)
    with pytest.raises(ValueError, match="lam"):
        gradient_penalty(critic, x, x, -1.0)
    for beta in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="beta"):
            EMA(critic, beta)
        with pytest.raises(ValueError, match="beta"):
            ema_update(torch.zeros(2), torch.ones(2), beta)
        with pytest.raises(ValueError, match="beta"):
            simulate_dirac("jsd", ema_beta=beta, n_steps=2)
    with pytest.raises(ValueError, match="gamma"):
        simulate_dirac("jsd", "r1", -1.0, n_steps=2)
    with pytest.raises(ValueError, match="loss"):
        simulate_dirac("kl", n_steps=2)
    with pytest.raises(ValueError, match="update"):
        simulate_dirac("jsd", update="both", n_steps=2)
    with pytest.raises(ValueError, match="reg"):
        dirac_eigenvalues_formula("jsd", "gp", 0.1)


def test_ema_module_matches_the_recursion():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, beta=0.9)
    expected = net.weight.detach().clone()
    for _ in range(5):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        ema.update(net)
        expected = 0.9 * expected + 0.1 * net.weight.detach()
    torch.testing.assert_close(ema.module.weight, expected)
    assert not any(p.requires_grad for p in ema.module.parameters())


# --- the course's critic with a bias, EMA on the generator only, the EMA's two regimes --------------------

BIAS_CONFIGS = [(loss, reg, g) for loss in ("jsd", "w1") for reg, g in (("none", 0.0), ("r1", 0.1), ("gp", 0.1))]


@settings(max_examples=30, deadline=None)
@given(theta=st.floats(-3, 3), psi=st.floats(-3, 3).filter(lambda v: abs(v) > 1e-6), psi1=st.floats(-2, 2),
       index=st.integers(0, len(BIAS_CONFIGS) - 1))
def test_closed_form_field_with_bias_equals_autograd_field(theta, psi, psi1, index):
    loss, reg, gamma = BIAS_CONFIGS[index]
    p = torch.tensor([theta, psi, psi1], dtype=torch.float64)
    auto = dirac_vector_field_autograd(p, loss, reg, gamma)
    closed = torch.stack(dirac_vector_field(p[0], p[1], loss, reg, gamma, psi1=p[2]))
    torch.testing.assert_close(auto.detach(), closed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_w1_bias_never_moves_and_changes_nothing(update):
    # W1: the bias cancels from E D(x) − E D(G(z)), so v_psi1 = 1 − 1 = 0 and the path is the bias-free one.
    plain = simulate_dirac("w1", "r1", 0.1, update=update, n_steps=200)
    biased = simulate_dirac("w1", "r1", 0.1, update=update, n_steps=200, bias=True, start=(1.0, 1.0, 0.3))
    assert torch.equal(biased["path"][:, 2], torch.full((201,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(biased["path"][:, :2], plain["path"], rtol=0, atol=0)


def test_ema_on_the_generator_only_leaves_the_critic_raw():
    out = simulate_dirac("jsd", "none", update="alternating", n_steps=300, ema_beta=0.9, bias=True, ema_on="generator")
    assert torch.equal(out["ema_path"][:, 1:], out["path"][:, 1:])
    theta = out["path"][:, 0]
    expected = theta[0].clone()
    for t in range(1, 301):
        expected = 0.9 * expected + 0.1 * theta[t]
    assert out["ema_generator_distance"] == pytest.approx(abs(expected.item()), rel=1e-12)
    with pytest.raises(ValueError, match="ema_on"):
        simulate_dirac("jsd", n_steps=2, ema_beta=0.9, ema_on="critic")
    with pytest.raises(ValueError, match="start"):
        simulate_dirac("jsd", n_steps=2, start=(1.0, 1.0, 0.0))


def _ema_of_geometric(z: complex, beta: float, n: int) -> tuple[list[complex], list[complex]]:
    p, avg, ps, avgs = 1.0 + 0j, 1.0 + 0j, [], []
    for _ in range(n):
        p *= z
        avg = beta * avg + (1 - beta) * p
        ps.append(p)
        avgs.append(avg)
    return ps, avgs


@pytest.mark.parametrize(("r", "omega"), [(1.0, 0.1), (0.995, 0.1), (0.9937, 0.0), (0.999, 0.3)])
def test_ema_gain_is_the_limit_ratio_when_r_exceeds_beta(r, omega):
    beta = 0.99
    ps, avgs = _ema_of_geometric(r * complex(math.cos(omega), math.sin(omega)), beta, 6000)
    assert abs(avgs[-1]) / abs(ps[-1]) == pytest.approx(ema_gain(beta, r, omega), rel=1e-6)


def test_ema_gain_special_cases_and_the_lagging_regime():
    beta = 0.99
    omega = 0.2
    filter_factor = (1 - beta) / abs(1 - beta * complex(math.cos(omega), -math.sin(omega)))
    assert ema_gain(beta, 1.0, omega) == pytest.approx(filter_factor, rel=1e-12)
    r = 0.995  # no rotation: the average lags, by r(1 − β)/(r − β) > 1
    assert ema_gain(beta, r, 0.0) == pytest.approx(r * (1 - beta) / (r - beta), rel=1e-12) and ema_gain(beta, r) > 1
    # r < β: the EMA's error decays like β^t, the iterate's like r^t (no finite ratio)
    ps, avgs = _ema_of_geometric(0.9, beta, 400)
    assert abs(avgs[-1]) / abs(avgs[-2]) == pytest.approx(beta, rel=1e-9)
    assert abs(ps[-1]) < 1e-15 < abs(avgs[-1])
    for bad in (beta, 0.5, math.inf):
        with pytest.raises(ValueError, match="r must be"):
            ema_gain(beta, bad)


def test_gp_rest_point_at_the_data_is_not_attracting():
    # sign(0) = 0 makes (0, 0) a rest point of the code's field, but the field jumps by 4λ across ψ = 0:
    # any critic off the flat one is pushed away from it, and the iterate leaves every small neighbourhood.
    zero = torch.zeros((), dtype=torch.float64)
    for loss in ("jsd", "w1"):
        v = dirac_vector_field(zero, zero, loss, "gp", 0.1)
        assert v[0].item() == 0.0 and v[1].item() == 0.0
        # autograd through gradient_penalty agrees: the gradient of |psi| (a norm) at 0 is taken as 0
        auto = dirac_vector_field_autograd(torch.zeros(2, dtype=torch.float64), loss, "gp", 0.1)
        assert auto.abs().max().item() == 0.0
        above = dirac_vector_field(zero, torch.tensor(1e-9, dtype=torch.float64), loss, "gp", 0.1)[1].item()
        below = dirac_vector_field(zero, torch.tensor(-1e-9, dtype=torch.float64), loss, "gp", 0.1)[1].item()
        assert above == pytest.approx(0.2, rel=1e-6) and below == pytest.approx(-0.2, rel=1e-6)
        for update in ("simultaneous", "alternating"):
            out = simulate_dirac(loss, "gp", 0.1, update=update, n_steps=300, start=(1e-3, 1e-3))
            assert out["path"].norm(dim=1).max() > 0.5, (loss, update)
