"""Every notebook follows the house layout, so readers always find the same first cells."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = SOLUTIONS + sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))


def test_there_are_notebooks():
    assert SOLUTIONS


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(ROOT)) for p in ALL])
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not stored, f"cells {stored} carry outputs: clear them before committing"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_title_install_and_setup_cells_come_first(path):
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), "first cell: '# Title' and goals"
    assert len(title.source.split("\n")) > 3, "the first cell says what the reader will learn"
    assert nb.cells[1].metadata.get("flowedu") == "install", "second cell: the install cell (make stamp)"
    code = [c for c in nb.cells if c.cell_type == "code"][1:4]
    assert any("config.setup(" in c.source for c in code), "a setup cell calling flowedu.config.setup comes next"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
