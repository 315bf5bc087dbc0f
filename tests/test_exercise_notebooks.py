"""Every exercise notebook runs top to bottom with only the blanks failing (NotImplementedError).

A student who opens one sees exactly the exercises raise, each blank cell once; every other cell
runs on flowedu's reference code. Executed in quick mode with FLOWEDU_SMOKE=1: which cells fail does
not depend on how long anything trains, and the solution notebooks' results are checked elsewhere.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))


def run_notebook(path: Path, timeout: int = 900, **env: str):
    """Execute ``path`` in a kernel whose environment adds ``env``; return it and its errors."""
    nb = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    errors = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append((index, output.ename, output.evalue))
    return nb, errors


@pytest.mark.notebooks
@pytest.mark.parametrize("path", EXERCISES, ids=[p.name for p in EXERCISES])
def test_exercise_notebook_fails_only_at_the_blanks(path):
    nb, errors = run_notebook(path, FLOWEDU_MODE="quick", FLOWEDU_SMOKE="1", TQDM_DISABLE="1")
    stubs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    assert stubs, f"{path.name}: no exercise blanks"
    wrong = [e for e in errors if e[1] != "NotImplementedError"]
    assert not wrong, f"{path.name}: cells fail with something other than the blanks: {wrong}"
    failing = [index for index, _, _ in errors]
    assert failing == stubs, (
        f"{path.name}: each blank cell must raise NotImplementedError exactly once and no other cell may; "
        f"blank cells {stubs}, cells that raised {failing}")
