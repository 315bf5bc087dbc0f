"""The energies U1-U4, the grid normaliser, and the arcs / sine toy data."""

import math

import numpy as np
import pytest
import torch

from flowedu import data
from flowedu.distributions import ENERGIES, U1, U2, U3, U4, grid_log_normalizer


def test_energies_match_the_formulas_at_a_point():
    z1, z2 = 0.7, -0.4
    w1 = math.sin(2 * math.pi * z1 / 4)
    w2 = 3 * math.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + math.exp(-(z1 - 1) / 0.3))
    expected = {
        "U1": 0.5 * ((math.hypot(z1, z2) - 2) / 0.4) ** 2
        - math.log(math.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + math.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)),
        "U2": 0.5 * ((z2 - w1) / 0.4) ** 2,
        "U3": -math.log(math.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + math.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2)),
        "U4": -math.log(math.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + math.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2)),
    }
    z = torch.tensor([[z1, z2]], dtype=torch.float64)
    for name, cls in ENERGIES.items():
        assert cls().log_prob(z).item() == pytest.approx(-expected[name], rel=1e-12)


def test_grid_normaliser_matches_closed_forms():
    gauss = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                   torch.eye(2, dtype=torch.float64))
    assert abs(grid_log_normalizer(gauss.log_prob, n=300)) < 1e-6
    # U2 with the soft box: ∫ dz2 = 0.4 √(2π); ∫ dz1 = 2·box + 0.1 √(2π) (two Gaussian half-tails)
    box = 3.0
    exact = math.log(0.4 * math.sqrt(2 * math.pi) * (2 * box + 0.1 * math.sqrt(2 * math.pi)))
    assert grid_log_normalizer(U2(box=box).log_prob, bounds=((-4, 4), (-4, 4)), n=800) == pytest.approx(exact, abs=1e-4)


def test_energies_are_finite_and_boxed():
    z = torch.tensor([[0.0, 0.0], [3.9, 1.0], [6.0, 0.0], [-30.0, 5.0]], dtype=torch.float64)
    for cls in (U2, U3, U4):
        lp = cls().log_prob(z)
        assert torch.isfinite(lp).all()
        assert lp[2] < cls(box=None if cls is U1 else 10.0).log_prob(z)[2] - 100  # the box bites beyond |z1| = 4
    assert torch.isfinite(U1().log_prob(z)).all()
    assert U1().envelope(z).abs().max() == 0


def test_energy_arguments_are_validated():
    with pytest.raises(ValueError, match="not normalisable"):
        U3(box=None)
    with pytest.raises(ValueError, match="box must be a finite number > 0"):
        U4(box=-1.0)
    with pytest.raises(ValueError, match=r"z must be a floating-point tensor \[\.\.\., 2\]"):
        U1().log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        grid_log_normalizer(U1().log_prob, n=1)
    with pytest.raises(ValueError, match="lo < hi"):
        grid_log_normalizer(U1().log_prob, bounds=((1, 0), (0, 1)))


@pytest.mark.parametrize("name", ["arcs", "sine"])
def test_new_toy_sets(name):
    x = data.toy2d(name, 2000, seed=0, device="cpu")
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    assert torch.equal(x, data.toy2d(name, 2000, seed=0, device="cpu"))
    clean = data.toy2d(name, 2000, noise=0.0, seed=0, device="cpu").numpy().astype(np.float64)
    if name == "arcs":
        radius = np.hypot(clean[:, 0], clean[:, 1] + 0.8)
        assert np.allclose(np.minimum(abs(radius - 1), abs(radius - 2)), 0, atol=1e-5)
    else:
        assert np.allclose(clean[:, 1], 1.5 * np.sin(clean[:, 0] * np.pi / 3), atol=1e-5)
