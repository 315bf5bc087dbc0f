import matplotlib
import pytest
import torch

from flowedu import plots

matplotlib.use("Agg")


def test_image_grid_places_images_with_padding():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (0.2, 0.4, 0.6)])
    grid = plots.image_grid(x, nrow=2, pad=1)
    assert grid.shape == (5, 5, 1)
    assert grid[0, 0, 0] == pytest.approx(0.2) and grid[0, 3, 0] == pytest.approx(0.4)
    assert grid[3, 0, 0] == pytest.approx(0.6)
    assert grid[2, :, 0].eq(0).all()  # grey background between rows
    colour = plots.image_grid(torch.zeros(2, 3, 2, 2), nrow=2, pad=1)
    assert colour.shape == (2, 5, 3) and colour[:, 2].eq(1).all()  # white between colour images


@pytest.mark.parametrize("shape", [(2, 8, 8), (0, 1, 8, 8), (2, 2, 8, 8)])
def test_image_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="x must have shape"):
        plots.image_grid(torch.zeros(shape))


def test_show_images_returns_axes():
    ax = plots.show_images(torch.rand(4, 1, 8, 8), title="t")
    assert ax.get_title() == "t"


def test_show_image_panels_titles_each_grid_and_validates():
    fig = plots.show_image_panels({"real": torch.rand(6, 1, 8, 8), "fake": torch.rand(4, 1, 8, 8)}, nrow=2)
    assert [ax.get_title() for ax in fig.axes] == ["real", "fake"]
    with pytest.raises(ValueError, match="panels must be"):
        plots.show_image_panels({})
    with pytest.raises(ValueError, match="panel_size"):
        plots.show_image_panels({"a": torch.rand(1, 1, 4, 4)}, panel_size=0)
