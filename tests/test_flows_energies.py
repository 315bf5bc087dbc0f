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


def test_grid2d_convention_and_integrals():
    from flowedu.distributions import Grid2D

    grid = Grid2D(((-1.0, 3.0), (0.0, 2.0)), n=4, dtype=torch.float64)
    assert grid.points.shape == (16, 2) and grid.cell_area == pytest.approx(1.0 * 0.5)
    # "xy" indexing: consecutive points move along z1; rows of the image follow z2
    torch.testing.assert_close(grid.points[:4, 0], grid.xs)
    assert (grid.points[:4, 1] == grid.ys[0]).all() and (grid.points[4:8, 1] == grid.ys[1]).all()
    image = grid.image(grid.points[:, 1])
    assert image.shape == (4, 4) and (image[:, 0] == grid.ys).all()
    assert grid.extent == (-1.0, 3.0, 0.0, 2.0)
    fine = Grid2D(((-7.0, 7.0), (-7.0, 7.0)), n=300, dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    gauss = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), eye)
    assert abs(fine.log_integral(fine.evaluate(gauss.log_prob))) < 1e-8
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        Grid2D(n=1)
    with pytest.raises(ValueError, match="lo < hi"):
        Grid2D(((0.0, 0.0), (0.0, 1.0)))
    with pytest.raises(ValueError, match="values must be a tensor with 4\\*\\*2 entries"):
        grid.image(torch.zeros(5))


def test_stack_log_probs_evaluates_each_target_on_its_column():
    from flowedu.distributions import stack_log_probs

    targets = [U1(), U3()]
    z = torch.randn(10, 2, 2, dtype=torch.float64)
    stacked = stack_log_probs(*(t.log_prob for t in targets))(z)
    assert stacked.shape == (10, 2)
    for i, t in enumerate(targets):
        torch.testing.assert_close(stacked[:, i], t.log_prob(z[:, i]))
    with pytest.raises(ValueError, match=r"z must have shape \[n, 2, 2\]"):
        stack_log_probs(*(t.log_prob for t in targets))(torch.zeros(10, 3, 2))
    with pytest.raises(ValueError, match="one or more callables"):
        stack_log_probs()


def test_two_moons_density_is_normalised_and_its_entropy_converges():
    from flowedu.distributions import TwoMoons

    moons = TwoMoons()
    grid = moons.grid(150)
    assert abs(grid.log_integral(grid.evaluate(moons.log_prob))) < 1e-6  # the box holds the mass
    entropy = moons.entropy()
    assert abs(entropy - TwoMoons(n_t=300).entropy(n_grid=220)) < 1e-3  # quadrature converged
    assert abs(entropy - 1.8296) < 1e-3  # FACTS.md: 1.8296 by quadrature
    # Monte Carlo over i.i.d. draws: -mean log p estimates the entropy (5 standard errors)
    x = moons.sample(20_000, generator=torch.Generator().manual_seed(0))
    log_p = moons.log_prob(x)
    assert abs(-log_p.mean().item() - entropy) < 5 * log_p.std().item() / math.sqrt(len(x))
    # standardised: population mean 0, standard deviation 1 in each coordinate
    assert x.mean(0).abs().max() < 0.03 and (x.std(0) - 1).abs().max() < 0.03


def test_two_moons_log_prob_matches_the_mixture_at_a_point():
    from flowedu.distributions import TwoMoons

    moons, noise = TwoMoons(n_t=400), 0.1
    mean, std = data.moons_moments(noise)
    y = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    x = y[0].numpy() * std + mean
    t = (np.arange(4000) + 0.5) / 4000 * np.pi  # a much finer rule, in NumPy
    curves = [np.stack([np.cos(t), np.sin(t)], 1), np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)]
    density = np.mean([np.exp(-((x - c) ** 2).sum(1) / (2 * noise**2)).mean() for c in curves])
    expected = np.log(density / (2 * np.pi * noise**2)) + np.log(std).sum()
    assert moons.log_prob(y).item() == pytest.approx(expected, abs=1e-4)  # midpoint rule, error O(n_t^-2)
    with pytest.raises(ValueError, match="noise must be"):
        TwoMoons(noise=0.0)
    assert moons.sample(0).shape == (0, 2)  # an empty sample_shape is allowed (distribution contract)
    with pytest.raises(ValueError, match="sample_shape must be"):
        moons.sample(-1)
