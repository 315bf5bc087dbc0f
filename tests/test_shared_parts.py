"""The parts every chapter shares, written once: the batch stream, the loss log, the MLP, the 2-D grid,
and the one N(0, I) log-density."""

import math

import pytest
import torch

from flowedu import flows, hmc, vae
from flowedu.distributions import log_standard_normal
from flowedu.grids import Grid2D, log_midpoint_integral
from flowedu.loops import LossLog, batch_cycle
from flowedu.nets import mlp


def test_batch_cycle_refuses_a_data_set_smaller_than_a_batch_and_reshuffles():
    with pytest.raises(ValueError, match=r"batch_size must be <= len\(x_train\) = 3, got 4"):
        batch_cycle(torch.zeros(3, 2), 4, name="x_train")
    stream = batch_cycle(torch.arange(10.0)[:, None], 4, torch.Generator().manual_seed(0))
    batches = [next(stream) for _ in range(6)]  # three passes of two full batches (the partial one dropped)
    assert all(b.shape == (4, 1) for b in batches)
    for first, second in zip(batches[::2], batches[1::2], strict=True):
        assert len(set(torch.cat([first, second]).flatten().tolist())) == 8  # no repeat within a pass


def test_loss_log_names_the_first_non_finite_step():
    log = LossLog(("a", "b"), 6)
    for step in range(6):
        log.record(step, a=torch.tensor(1.0), b=torch.tensor(float("nan") if step in (3, 5) else 0.0))
    log.check(3, "test")  # the first three steps are finite
    with pytest.raises(FloatingPointError, match="step 4 "):
        log.check(6, "test")
    assert log.tolist()["a"] == [1.0] * 6


def test_mlp_layers_and_zero_last():
    net = mlp([3, 5, 5, 2], zero_last=True)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert torch.equal(net(torch.randn(4, 3)), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="sizes must list"):
        mlp([3])


def test_one_standard_normal_log_density():
    z = torch.randn(7, 3, 4, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(log_standard_normal(z), expected)
    torch.testing.assert_close(flows.StandardNormal(4).log_prob(z), expected)
    torch.testing.assert_close(vae.StandardNormalPrior(4).log_prob(z), expected)


def test_one_grid_normaliser_for_the_flows_grid_and_the_banana_grid():
    """Both 2-D grids normalise with ``log_midpoint_integral``; the banana grid keeps its documented
    ``[n1, n2]`` ("ij") layout and its own midpoint formula (so the HMC notebook's numbers are unchanged),
    which equals Grid2D's midpoints to rounding."""
    post = hmc.BananaPosterior(hmc.banana_data())
    grid = post.grid(60)
    reference = Grid2D(((-6.0, 2.5), (-3.0, 3.0)), 60, dtype=torch.float64)
    torch.testing.assert_close(grid.theta1, reference.xs, rtol=0, atol=1e-12)
    torch.testing.assert_close(grid.theta2, reference.ys, rtol=0, atol=1e-12)
    t1, t2 = torch.meshgrid(grid.theta1, grid.theta2, indexing="ij")
    log_joint = post.log_prob(torch.stack([t1, t2], -1))  # row i at theta1[i]
    assert grid.log_z == log_midpoint_integral(log_joint, grid.cell_area)
    torch.testing.assert_close(grid.log_density, log_joint - grid.log_z, rtol=0, atol=0)
    assert math.isclose(reference.log_integral(post.log_prob(reference.points)), grid.log_z, abs_tol=1e-9)
    assert math.isclose(float(grid.density.sum() * grid.cell_area), 1.0, rel_tol=1e-12)
