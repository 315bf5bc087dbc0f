"""Stamp the repository URL and release tag into notebooks and the README.

The URL and the tag are defined once, in ``_config.yml`` (``repository.url`` and
``repository.branch``; the book's launch buttons use the same pair). This tool writes them into:

* each notebook's Colab badge (a line in its first cell),
* each notebook's install cell (the code cell with metadata ``"flowedu": "install"``, added as the
  second cell if missing),
* the README's notebook table and chapter list (between ``<!-- BEGIN ... -->`` markers).

Usage::

    python -m flowedu.stamp          # rewrite what is out of date
    python -m flowedu.stamp --check  # exit 1 if anything is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_PATTERN = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$")
INSTALL_KEY = "install"
README_BLOCKS = ("NOTEBOOKS", "CHAPTERS")


@dataclass(frozen=True)
class Release:
    """Where the book is published: ``url`` = ``https://github.com/<owner>/<repo>``, ``tag`` = release tag."""

    url: str
    tag: str

    @property
    def slug(self) -> str:
        return self.url.removeprefix("https://github.com/")

    def colab_url(self, path: str) -> str:
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.tag}/{path}"

    def badge(self, path: str) -> str:
        return f"[![Open In Colab]({BADGE_IMAGE})]({self.colab_url(path)})"

    def install_requirement(self) -> str:
        return f"flowedu[images] @ git+{self.url}@{self.tag}"

    def install_source(self) -> str:
        """The install cell: import flowedu, or pip-install it at the release tag; one sentence if that fails."""
        return INSTALL_CELL.format(requirement=self.install_requirement())


# The notebooks' install cell. On Colab (or any machine without flowedu) it installs the package at the
# release tag. pip keeps an installed torch that satisfies torch>=2.2, so Colab's CUDA build stays. If
# the repository cannot be reached, the cell prints what failed and the remedy, without a traceback
# (IPython shows `_render_traceback_` instead), and stops a "run all" there.
INSTALL_CELL = """\
# Colab, or any machine without flowedu: install the book's package at its release tag.
try:
    import flowedu
except ModuleNotFoundError:
    import subprocess
    import sys

    requirement = "{requirement}"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        lines = [line.strip() for line in pip.stderr.splitlines() if line.strip()] or ["pip said nothing"]
        reason = next((line for line in lines if line.startswith("fatal:")), lines[-1])

        class InstallFailed(Exception):
            def _render_traceback_(self):
                return [str(self)]

        raise InstallFailed(
            f"Could not install flowedu from {{requirement.split('@ ')[1]}} ({{reason}}). Install it from "
            "a local clone instead: `pip install -e .` in the repository folder, then restart the kernel."
        ) from None
    import flowedu"""


def read_release(root: Path) -> Release:
    """Read ``repository.url`` and ``repository.branch`` (the release tag) from ``root/_config.yml``."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    repository = config.get("repository") or {}
    url, tag = str(repository.get("url", "")).rstrip("/"), str(repository.get("branch", ""))
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"_config.yml: repository.url must be https://github.com/<owner>/<repo>, got {url!r}")
    if not re.fullmatch(r"[\w.-]+", tag):
        raise ValueError(f"_config.yml: repository.branch must be a release tag such as v0.1.0, got {tag!r}")
    return Release(url, tag)


def _install_cell(release: Release):
    cell = nbformat.v4.new_code_cell(release.install_source())
    cell.metadata["flowedu"] = INSTALL_KEY
    cell.metadata["tags"] = ["hide-input"]
    cell.id = "install-flowedu"
    return cell


def stamp_notebook(nb, path: str, release: Release) -> None:
    """Put the badge for ``path`` (relative to the repository root) and the install cell into ``nb``."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise ValueError(f"{path}: the first cell must be markdown with the title")
    lines = nb.cells[0].source.split("\n")
    badge = release.badge(path)
    found = [i for i, line in enumerate(lines) if BADGE_PATTERN.match(line)]
    if found:
        lines[found[0]] = badge
    else:
        lines[1:1] = ["", badge]
    nb.cells[0].source = "\n".join(lines)
    first_line = release.install_source().split("\n")[0]
    installs = [
        i for i, cell in enumerate(nb.cells)
        if cell.metadata.get("flowedu") == INSTALL_KEY
        or (cell.cell_type == "code" and cell.source.startswith(first_line))
    ]
    for extra in reversed(installs[1:]):  # a pasted copy of the install cell: keep one
        del nb.cells[extra]
    if installs:
        nb.cells[installs[0]].metadata["flowedu"] = INSTALL_KEY
        cell = nb.cells[installs[0]]
        cell.source = release.install_source()
        cell.metadata["tags"] = ["hide-input"]
    else:
        position = 1
        while position < len(nb.cells) and nb.cells[position].metadata.get("flowedu") == "generated-note":
            position += 1
        nb.cells.insert(position, _install_cell(release))


def _title(path: Path) -> str:
    if path.suffix == ".ipynb":
        text = nbformat.read(path, as_version=4).cells[0].source
    else:
        text = path.read_text()
    for line in text.split("\n"):
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def toc_entries(root: Path) -> list[tuple[str, list[str]]]:
    """``[(part caption, [file, ...]), ...]`` from ``_toc.yml`` (files without suffix, as written there)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    parts = [("", [toc["root"]])]
    for part in toc.get("parts", []):
        parts.append((part.get("caption", ""), _toc_files(part.get("chapters"))))
    return parts


def _toc_files(entries) -> list[str]:
    files = []
    for entry in entries or []:
        if "file" in entry:
            files.append(entry["file"])
        files.extend(_toc_files(entry.get("sections")))
    return files


def _resolve(root: Path, file: str) -> Path:
    for suffix in ("", ".md", ".ipynb"):
        candidate = root / (file + suffix)
        if candidate.is_file():
            return candidate
    raise ValueError(f"_toc.yml names {file!r}, which does not exist")


def readme_blocks(root: Path, release: Release) -> dict[str, str]:
    """The generated README blocks: the notebook table and the chapter list."""
    rows = ["| Notebook | Solution | Exercise |", "| --- | --- | --- |"]
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        rel = f"notebooks/{path.name}"
        exercise = root / "notebooks" / "exercises" / path.name
        ex_badge = release.badge(f"notebooks/exercises/{path.name}") if exercise.exists() else "—"
        rows.append(f"| [{_title(path)}]({rel}) | {release.badge(rel)} | {ex_badge} |")
    chapters = []
    for caption, files in toc_entries(root)[1:]:
        chapters.append(f"- **{caption}**: " + "; ".join(
            f"[{_title(_resolve(root, f))}]({_resolve(root, f).relative_to(root)})" for f in files
        ))
    return {"NOTEBOOKS": "\n".join(rows), "CHAPTERS": "\n".join(chapters)}


def stamp_readme(text: str, blocks: dict[str, str]) -> str:
    for name in README_BLOCKS:
        begin, end = f"<!-- BEGIN {name} (generated by make stamp) -->", f"<!-- END {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md: missing the block {begin} ... {end}")
        replacement = f"{begin}\n{blocks[name]}\n{end}"
        text = pattern.sub(lambda _, r=replacement: r, text)
    return text


def plan(root: Path) -> dict[Path, str]:
    """The new text of every file whose stamp is out of date."""
    release = read_release(root)
    changes = {}
    for path in sorted((root / "notebooks").glob("**/*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        old = path.read_text()
        nb = nbformat.reads(old, as_version=4)
        stamp_notebook(nb, str(path.relative_to(root)), release)
        new = nbformat.writes(nb) + "\n"
        if new != old:
            changes[path] = new
    readme = root / "README.md"
    old = readme.read_text()
    new = stamp_readme(old, readme_blocks(root, release))
    if new != old:
        changes[readme] = new
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    args = parser.parse_args(argv)
    changes = plan(args.root)
    for path, text in changes.items():
        if args.check:
            print(f"{path.relative_to(args.root)}: badge, install cell or README block out of date "
                  "(run make stamp)", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"stamped {path.relative_to(args.root)}")
    if args.check and not changes:
        print("stamps: badges, install cells and README agree with _config.yml")
    return 1 if args.check and changes else 0


if __name__ == "__main__":
    raise SystemExit(main())
