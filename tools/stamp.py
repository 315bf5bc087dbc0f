"""Stamp the repository URL, release tag and book URL into notebooks, chapter pages and the README.

The three are defined once, in ``_config.yml``: ``repository.url`` and ``repository.branch`` (the
release tag; the book's launch buttons use the same pair) and ``html.baseurl`` (where the rendered
book is published). This tool writes them into:

* each notebook's link line (in its first cell): its Colab badge, its chapter page in the rendered
  book, and (for a solution notebook with exercises) its exercise version on Colab;
* each notebook's install cell (the code cell with metadata ``"flowedu": "install"``, added as the
  second cell if missing);
* each chapter page's list of its notebooks, with solution and exercise links;
* the README's notebook table and chapter list (between ``<!-- BEGIN ... -->`` markers).

A notebook's chapter is the first page of its part in ``_toc.yml``.

Usage::

    python tools/stamp.py          # rewrite what is out of date
    python tools/stamp.py --check  # exit 1 if anything is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_PATTERN = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\).*$")
INSTALL_KEY = "install"
README_BLOCKS = ("NOTEBOOKS", "CHAPTERS")
PAGE_BLOCK = "NOTEBOOKS"
DEFAULT_BOOK_URL = "https://flowedu-book.github.io/flowedu/"


@dataclass(frozen=True)
class Release:
    """Where the book is published: ``url`` = ``https://github.com/<owner>/<repo>``, ``tag`` = release tag,
    ``book_url`` = the rendered book's address (ends with ``/``)."""

    url: str
    tag: str
    book_url: str = DEFAULT_BOOK_URL

    def page_url(self, page: str) -> str:
        """The rendered page of ``page`` (a path like ``book/vae`` or ``notebooks/vae.ipynb``)."""
        return self.book_url + re.sub(r"\.(md|ipynb)$", "", page) + ".html"

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
    book_url = str((config.get("html") or {}).get("baseurl", ""))
    if not re.fullmatch(r"https://[\w.-]+(/[\w.-]+)*/", book_url):
        raise ValueError(f"_config.yml: html.baseurl must be the book's https address ending in '/', got {book_url!r}")
    return Release(url, tag, book_url)


def _install_cell(release: Release):
    cell = nbformat.v4.new_code_cell(release.install_source())
    cell.metadata["flowedu"] = INSTALL_KEY
    cell.metadata["tags"] = ["hide-input"]
    cell.id = "install-flowedu"
    return cell


def link_line(path: str, release: Release, chapter: tuple[str, str] | None = None,
              exercise: bool = False) -> str:
    """The first cell's line of links: Colab badge, chapter page, exercise version (where they apply).

    Args:
        path: the notebook, relative to the repository root.
        chapter: ``(title, page)`` of its chapter, e.g. ``("Variational autoencoders", "book/vae")``.
        exercise: whether ``path`` (a solution notebook) has an exercise version.
    """
    links = [release.badge(path)]
    if chapter is not None:
        links.append(f"[Chapter: {chapter[0]}]({release.page_url(chapter[1])})")
    if exercise:
        name = path.rsplit("/", 1)[-1]
        links.append(f"[Exercise version on Colab]({release.colab_url(f'notebooks/exercises/{name}')})")
    return " · ".join(links)


def stamp_notebook(nb, path: str, release: Release, chapter: tuple[str, str] | None = None,
                   exercise: bool = False) -> None:
    """Put the link line for ``path`` (relative to the repository root) and the install cell into ``nb``."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise ValueError(f"{path}: the first cell must be markdown with the title")
    lines = nb.cells[0].source.split("\n")
    badge = link_line(path, release, chapter, exercise)
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
    table = ["| Part | Chapter page | Notebooks | Package | Checks |", "| --- | --- | --- | --- | --- |"]
    rooms, of_notebook = chapter_rooms(root), chapters(root)
    for caption, files in toc_entries(root)[1:]:
        pages = [f for f in files if _resolve(root, f).suffix == ".md"]
        notebooks = [f for f in files if _resolve(root, f).suffix == ".ipynb"]
        pages += [page for nb, (_, page) in of_notebook.items() if nb[:-6] in notebooks and page not in pages]
        for page in pages:
            own = [nb for nb in notebooks if of_notebook.get(f"{nb}.ipynb", (None, None))[1] == page]
            room, checks = rooms.get(page, ("—", []))
            link = f"[{_title(_resolve(root, page))}]({_resolve(root, page).relative_to(root)})"
            notebook_links = ", ".join(f"[{Path(nb).name}]({nb}.ipynb)" for nb in own) or "—"
            table.append(f"| {caption} | {link} | {notebook_links} | {room} | {', '.join(checks) or '—'} |")
    return {"NOTEBOOKS": "\n".join(rows), "CHAPTERS": "\n".join(table)}


def chapter_rooms(root: Path) -> dict[str, tuple[str, list[str]]]:
    """Each chapter page's package and check modules: ``{"book/vae": ("`flowedu.vae`", ["`flowedu.checks.vae`"])}``.

    The package is ``flowedu/<page name>/`` (the intro's is ``flowedu.config`` and ``flowedu.data``); the
    check modules are those of ``flowedu/checks`` whose docstring opens with ``Chapter: book/<page>.md``.
    """
    import ast

    rooms: dict[str, tuple[str, list[str]]] = {}
    checks: dict[str, list[str]] = {}
    for path in sorted((root / "flowedu" / "checks").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        match = re.match(r"Chapter: (book/[\w-]+)\.md", doc)
        if match:
            checks.setdefault(match.group(1), []).append(f"`flowedu.checks.{path.stem}`")
    for page in {*checks, *(f"book/{p.stem}" for p in (root / "book").glob("*.md"))}:
        stem = page.removeprefix("book/")
        if (root / "flowedu" / stem / "__init__.py").is_file():
            room = f"`flowedu.{stem}`"
        elif page == "book/intro":
            room = "`flowedu.config`, `flowedu.data`"
        else:
            room = None
        if room or page in checks:
            rooms[page] = (room or "—", checks.get(page, []))
    return rooms


def stamp_readme(text: str, blocks: dict[str, str]) -> str:
    for name in README_BLOCKS:
        begin, end = f"<!-- BEGIN {name} (generated by make stamp) -->", f"<!-- END {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md: missing the block {begin} ... {end}")
        replacement = f"{begin}\n{blocks[name]}\n{end}"
        text = pattern.sub(lambda _, r=replacement: r, text)
    return text


def chapters(root: Path) -> dict[str, tuple[str, str]]:
    """Each notebook's chapter: ``{"notebooks/vae.ipynb": ("Variational autoencoders", "book/vae"), ...}``.

    The chapter of a notebook is the first markdown page of its part in ``_toc.yml``, unless the
    notebook's metadata names another (``{"flowedu": {"chapter": "book/intro"}}``).
    """
    mapping = {}
    for _, files in toc_entries(root)[1:]:
        pages = [f for f in files if _resolve(root, f).suffix == ".md"]
        for f in files:
            path = _resolve(root, f)
            if path.suffix != ".ipynb":
                continue
            meta = nbformat.read(path, as_version=4).metadata.get("flowedu", {})
            page = meta.get("chapter") if isinstance(meta, dict) and meta.get("chapter") else (pages or [None])[0]
            if page is not None:
                mapping[str(path.relative_to(root))] = (_title(_resolve(root, page)), page)
    return mapping


def page_block(root: Path, release: Release, page: str, mapping: dict[str, tuple[str, str]]) -> str:
    """The chapter page's list of its notebooks, with Colab links to the solution and exercise versions."""
    rows = []
    for notebook, (_, chapter_page) in mapping.items():  # in _toc.yml order
        if chapter_page != page:
            continue
        name = notebook.rsplit("/", 1)[-1]
        links = [f"[solution on Colab]({release.colab_url(notebook)})"]
        if (root / "notebooks" / "exercises" / name).exists():
            links.append(f"[exercise version on Colab]({release.colab_url(f'notebooks/exercises/{name}')})")
        title = _title(root / notebook)
        rows.append(f"- [{title}](../{notebook}): " + " · ".join(links))
    return "**Notebooks**\n\n" + "\n".join(rows) if rows else ""


def stamp_page(text: str, block: str, page: str) -> str:
    begin, end = f"<!-- BEGIN {PAGE_BLOCK} (generated by make stamp) -->", f"<!-- END {PAGE_BLOCK} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    replacement = f"{begin}\n{block}\n{end}"
    if pattern.search(text):
        return pattern.sub(lambda _: replacement, text)
    # first time: after the page's title and its first paragraph
    lines = text.split("\n")
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    after = title + 1
    while after < len(lines) and not lines[after].strip():
        after += 1
    while after < len(lines) and lines[after].strip():
        after += 1
    return "\n".join([*lines[:after], "", replacement, *lines[after:]])


INSTRUCTOR_PAGE = "book/instructors.md"
TIME_COLUMNS = (("quick_cpu", "quick mode, laptop CPU"), ("full_t4", "full mode, Colab T4"),
                ("full_cpu", "full mode, 2-core CPU"))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def instructor_blocks(root: Path) -> dict[str, str]:
    """The instructor page's tables: time per notebook (from ``flowedu/timings.json``) and exercises."""
    import json

    timings_file = root / "flowedu" / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    notebooks = [f for _, files in toc_entries(root)[1:] for f in files if _resolve(root, f).suffix == ".ipynb"]
    times = ["| notebook | " + " | ".join(label for _, label in TIME_COLUMNS) + " |",
             "| --- |" + " --- |" * len(TIME_COLUMNS)]
    exercises = ["| notebook | code exercises (points) | prose questions |", "| --- | ---: | ---: |"]
    for notebook in notebooks:
        name = notebook.rsplit("/", 1)[-1]
        entry = timings.get(name, {})
        cells = [f"{_duration(entry[key]['seconds'])} ({entry[key]['how']})" if key in entry else "not measured"
                 for key, _ in TIME_COLUMNS]
        times.append(f"| {{doc}}`../{notebook}` | " + " | ".join(cells) + " |")
        nb = nbformat.read(_resolve(root, notebook), as_version=4)
        meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        checks = [m for m in meta if m.get("grade") and not m.get("solution")]
        answers = [m for m in meta if m.get("grade") and m.get("solution")]
        if checks or answers:
            points = sum(m.get("points", 0) for m in checks)
            exercises.append(f"| {{doc}}`../{notebook}` | {len(checks)} ({points:g}) | {len(answers)} |")
    return {"TIMES": "\n".join(times), "EXERCISES": "\n".join(exercises)}


def stamp_blocks(text: str, blocks: dict[str, str], where: str) -> str:
    """Replace each ``<!-- BEGIN NAME (generated by make stamp) -->`` ... ``<!-- END NAME -->`` block."""
    for name, body in blocks.items():
        begin, end = f"<!-- BEGIN {name} (generated by make stamp) -->", f"<!-- END {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"{where}: missing the block {begin} ... {end}")
        text = pattern.sub(lambda _, r=f"{begin}\n{body}\n{end}": r, text)
    return text


def plan(root: Path) -> dict[Path, str]:
    """The new text of every file whose stamp is out of date."""
    release = read_release(root)
    mapping = chapters(root)
    changes = {}
    for path in sorted((root / "notebooks").glob("**/*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        old = path.read_text()
        nb = nbformat.reads(old, as_version=4)
        rel = str(path.relative_to(root))
        solution = f"notebooks/{path.name}"
        is_exercise = path.parent.name == "exercises"
        has_exercise = not is_exercise and (root / "notebooks" / "exercises" / path.name).exists()
        stamp_notebook(nb, rel, release, mapping.get(solution), exercise=has_exercise)
        new = nbformat.writes(nb) + "\n"
        if new != old:
            changes[path] = new
    for page in sorted({chapter for _, chapter in mapping.values()}):
        path = _resolve(root, page)
        old = path.read_text()
        block = page_block(root, release, page, mapping)
        new = stamp_page(old, block, page)
        if new != old:
            changes[path] = new
    instructors = root / INSTRUCTOR_PAGE
    if instructors.is_file():
        old = instructors.read_text()
        new = stamp_blocks(old, instructor_blocks(root), INSTRUCTOR_PAGE)
        if new != old:
            changes[instructors] = new
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
            print(f"{path.relative_to(args.root)}: links, install cell or generated block out of date "
                  "(run make stamp)", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"stamped {path.relative_to(args.root)}")
    if args.check and not changes:
        print("stamps: links, install cells, chapter pages and README agree with _config.yml")
    return 1 if args.check and changes else 0


if __name__ == "__main__":
    raise SystemExit(main())
