"""The notebooks' install cell, run for real, as a Colab user runs it.

Colab comes with torch and no flowedu; the first cell of every notebook pip-installs flowedu from the
release tag. Here the "repository" is a local bare git repository of this working tree with the
release tag, and the "Colab runtime" a fresh virtual environment that sees this project's torch,
torchvision, numpy, ... (a path file, as preinstalled packages) but not flowedu. The test runs the
install cell's own command against ``git+file://...@tag`` inside a kernel of that environment, then
the whole ``getting_started`` notebook there, and checks that torch was left alone. With a URL that
cannot be reached, the cell must say so in one sentence, with the remedy, and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import stamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _tagged_bare_repository(tmp_path: Path, tag: str) -> Path:
    """A bare repository holding this working tree's files (tracked and new) in one commit with ``tag``."""
    source = tmp_path / "source"
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _git("init", "--quiet", cwd=source)
    _git("add", "--all", cwd=source)
    _git("commit", "--quiet", "-m", "release", cwd=source)
    _git("tag", tag, cwd=source)
    bare = tmp_path / "flowedu.git"
    _git("clone", "--quiet", "--bare", str(source), str(bare), cwd=tmp_path)
    return bare


def _colab_like_venv(tmp_path: Path) -> Path:
    """A fresh venv whose preinstalled packages are this project's (torch...), without flowedu."""
    venv = tmp_path / "runtime"
    base = getattr(sys, "_base_executable", sys.executable)
    # Without its own (older, bundled) pip: the project's current pip is among the preinstalled
    # packages, as Colab ships a current pip.
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # A plain path line: the project's site-packages become visible, but their own .pth files (the
    # editable flowedu among them) are not processed, so flowedu stays uninstalled.
    (Path(site) / "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = subprocess.run([str(python), "-c", "import flowedu"], capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode != 0, "the fresh runtime must not see flowedu before the install cell runs"
    return python


def _kernel(tmp_path: Path, python: Path, monkeypatch) -> str:
    folder = tmp_path / "jupyter" / "kernels" / "runtime"
    folder.mkdir(parents=True)
    spec = {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Colab-like runtime", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "runtime"


def _torch_location(python: Path) -> tuple[str, str]:
    out = subprocess.run([str(python), "-c", "import torch; print(torch.__file__); print(torch.__version__)"],
                         check=True, capture_output=True, text=True, cwd=python.parent).stdout.split()
    return out[0], out[1]


def _run(nb, kernel: str, folder: Path, timeout: int = 900):
    NotebookClient(nb, kernel_name=kernel, timeout=timeout, allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return [(i, o) for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.notebooks
def test_install_cell_against_a_tagged_local_repository(tmp_path, monkeypatch):
    release = stamp.read_release(ROOT)
    bare = _tagged_bare_repository(tmp_path, release.tag)
    python = _colab_like_venv(tmp_path)
    kernel = _kernel(tmp_path, python, monkeypatch)
    torch_before = _torch_location(python)
    monkeypatch.setenv("FLOWEDU_MODE", "quick")
    monkeypatch.setenv("FLOWEDU_SMOKE", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    workdir = tmp_path / "work"
    workdir.mkdir()

    # 1. The repository cannot be reached: one sentence with the URL and the remedy, no traceback.
    unreachable = f"flowedu[images] @ git+file://{tmp_path}/absent.git@{release.tag}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(stamp.INSTALL_CELL.format(requirement=unreachable))])
    errors = _run(nb, kernel, workdir, timeout=300)
    assert len(errors) == 1, errors
    error = errors[0][1]
    assert error.ename == "InstallFailed"
    assert len(error.traceback) == 1, f"a traceback was shown: {error.traceback}"
    sentence = error.traceback[0]
    assert f"git+file://{tmp_path}/absent.git@{release.tag}" in sentence and "pip install -e ." in sentence

    # 2. The real thing: the install cell of getting_started, pointed at the local tagged repository.
    nb = nbformat.read(ROOT / "notebooks" / "getting_started.ipynb", as_version=4)
    install = [c for c in nb.cells if c.metadata.get("flowedu") == stamp.INSTALL_KEY]
    assert len(install) == 1
    assert install[0].source == release.install_source(), "run make stamp: the install cell is out of date"
    install[0].source = stamp.INSTALL_CELL.format(requirement=f"flowedu[images] @ git+file://{bare}@{release.tag}")
    errors = _run(nb, kernel, workdir)
    assert not errors, [(i, e.ename, e.evalue) for i, e in errors]

    check = subprocess.run([str(python), "-c", "import flowedu; print(flowedu.__file__, flowedu.__version__)"],
                           check=True, capture_output=True, text=True, cwd=workdir).stdout.split()
    assert Path(check[0]).is_relative_to(python.parent.parent), f"flowedu was imported from {check[0]}"
    assert check[1] == release.tag.removeprefix("v")
    assert _torch_location(python) == torch_before, "installing flowedu replaced the runtime's torch"
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--path",
                             str(Path(check[0]).parents[1])], check=True, capture_output=True, text=True).stdout
    installed = {item["name"].lower() for item in json.loads(listed)}
    assert "flowedu" in installed and "torch" not in installed, installed
