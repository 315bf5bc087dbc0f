"""One URL and one release tag, in _config.yml; badges, install cells and README agree with it."""

import sys
from pathlib import Path

import nbformat
import pytest

import flowedu

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import stamp  # noqa: E402


def test_repository_stamps_agree_with_config(root):
    assert stamp.plan(root) == {}, "run `make stamp`"


def test_release_tag_matches_the_package_version(root):
    assert stamp.read_release(root).tag == f"v{flowedu.__version__}"


def test_every_notebook_has_badge_and_install_cell(root):
    release = stamp.read_release(root)
    for path in sorted((root / "notebooks").glob("**/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        rel = str(path.relative_to(root))
        assert release.badge(rel) in nb.cells[0].source, rel
        installs = [c for c in nb.cells if c.metadata.get("flowedu") == "install"]
        assert len(installs) == 1 and release.install_source() == installs[0].source, rel
        copies = [c for c in nb.cells if c.cell_type == "code" and "install the book's package" in c.source]
        assert len(copies) == 1, f"{rel}: the install code appears in {len(copies)} cells"


def test_stamp_inserts_and_then_replaces():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T\ntext"), nbformat.v4.new_code_cell("1")])
    stamp.stamp_notebook(nb, "notebooks/t.ipynb", stamp.Release("https://github.com/a/b", "v1"))
    assert nb.cells[0].source.split("\n")[2].startswith("[![Open In Colab]")
    assert nb.cells[1].metadata["flowedu"] == "install" and len(nb.cells) == 3
    stamp.stamp_notebook(nb, "notebooks/t.ipynb", stamp.Release("https://github.com/c/d", "v2"))
    assert "github/c/d/blob/v2/notebooks/t.ipynb" in nb.cells[0].source
    assert "git+https://github.com/c/d@v2" in nb.cells[1].source and len(nb.cells) == 3


def test_stamp_adopts_a_pasted_install_cell_and_drops_copies():
    release = stamp.Release("https://github.com/a/b", "v1")
    pasted = nbformat.v4.new_code_cell(release.install_source())
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), pasted,
                                         nbformat.v4.new_code_cell(release.install_source()),
                                         nbformat.v4.new_code_cell("1")])
    stamp.stamp_notebook(nb, "notebooks/t.ipynb", release)
    assert [c.source for c in nb.cells[1:]] == [release.install_source(), "1"]
    assert nb.cells[1].metadata["flowedu"] == "install"


@pytest.mark.parametrize(
    ("repository", "match"),
    [
        ("url: http://example.org/x\n  branch: v1", "repository.url"),
        ("url: https://github.com/a/b\n  branch: ''", "branch"),
    ],
)
def test_bad_config_is_rejected(tmp_path, repository, match):
    (tmp_path / "_config.yml").write_text(f"repository:\n  {repository}\n")
    with pytest.raises(ValueError, match=match):
        stamp.read_release(tmp_path)


def test_readme_block_missing_is_an_error():
    with pytest.raises(ValueError, match="missing the block"):
        stamp.stamp_readme("no blocks", {"NOTEBOOKS": "", "CHAPTERS": ""})
