"""Every exercise notebook runs top to bottom with only the blanks failing (NotImplementedError).

A student who opens one sees exactly the exercises raise; every other cell runs on flowedu's
reference code. Executed in quick mode, like the solution notebooks.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))


def run_notebook(path: Path, timeout: int = 900):
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("FLOWEDU_MODE", "quick")
    NotebookClient(nb, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append((index, output.ename, output.evalue))
    return nb, errors


@pytest.mark.notebooks
@pytest.mark.parametrize("path", EXERCISES, ids=[p.name for p in EXERCISES])
def test_exercise_notebook_fails_only_at_the_blanks(path):
    nb, errors = run_notebook(path)
    stubs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    assert stubs, f"{path.name}: no exercise blanks"
    wrong = [e for e in errors if e[1] != "NotImplementedError"]
    assert not wrong, f"{path.name}: cells fail with something other than the blanks: {wrong}"
    assert errors, f"{path.name}: the blanks did not raise NotImplementedError"
