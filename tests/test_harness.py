"""The test harness itself: nbval must fail a notebook whose assert fails, and pass a sound one."""

import subprocess
import sys

import nbformat
import pytest


def nbval(tmp_path, source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )


@pytest.mark.notebooks
def test_nbval_fails_a_notebook_with_a_failing_assert(tmp_path):
    result = nbval(tmp_path, "nll = 2.1\nassert nll < 1.9, nll")
    assert result.returncode != 0, result.stdout
    assert "AssertionError" in result.stdout


@pytest.mark.notebooks
def test_nbval_passes_a_sound_notebook(tmp_path):
    result = nbval(tmp_path, "nll = 1.7\nassert nll < 1.9, nll")
    assert result.returncode == 0, result.stdout
