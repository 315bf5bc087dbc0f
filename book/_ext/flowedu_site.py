"""Site-level fixes for the flowedu book (a local Sphinx extension, registered in ``_config.yml``).

What it does, and why:

- **MathJax served with the book.** The pages load MathJax 3 from ``_static/mathjax/`` instead of a CDN, so
  the formulas (and the book's macros ``\\KL``, ``\\elbo``, ...) render offline and behind firewalls. The files
  come from the npm registry (``npm pack mathjax@3.2.2``, checked by npm against the registry's integrity
  hash) and are cached in ``$XDG_CACHE_HOME/flowedu/mathjax-3.2.2`` (``~/.cache/...``); ``FLOWEDU_MATHJAX_DIR``
  may point at an unpacked ``mathjax/es5`` folder instead. When neither works the build says so, keeps the
  CDN address, and every page with maths shows a short visible note if MathJax does not load, rather than
  raw LaTeX without explanation (``FLOWEDU_MATHJAX=required`` turns the message into a build warning).
- **One copy of each script.** sphinx-thebe registers its inline configuration twice, which redefines a
  ``const`` and throws a console error on every page; duplicated scripts and style sheets are dropped.
- **Author-year bibliography.** A pybtex style ``flowedu`` (``bibtex_default_style``): labels in the same
  author-year form as the in-text citations ("Kingma and Welling, 2014"), entries sorted by author, year and
  title, arXiv identifiers in ``eprint`` or in a note ``arXiv:1312.6114`` and DOIs linked; ``$...$`` in an
  entry (a title) is typeset as maths.
- **Styles.** ``flowedu.css`` (maths, code and tables scroll inside their own box instead of being cut off,
  figure captions) and ``flowedu.js`` (the MathJax note) from ``book/_static``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"
# What the pages need from the npm package's es5/ folder: the combined component, the TeX extensions it
# autoloads, the CHTML fonts, the menu and the accessibility components the menu can switch on.
MATHJAX_KEEP = (
    MATHJAX_ENTRY,
    "input/tex/extensions/",
    "input/mml/",
    "output/chtml/fonts/woff-v2/",
    "ui/",
    "a11y/",
    "sre/mathmaps/base.json",
    "sre/mathmaps/en.json",
    "sre/mathmaps/nemeth.json",
)
STATIC = Path(__file__).resolve().parent.parent / "_static"


# ----------------------------------------------------------------------------------------------- MathJax
def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flowedu" / f"mathjax-{MATHJAX_VERSION}"


def _complete(folder: Path) -> bool:
    return (folder / MATHJAX_ENTRY).is_file() and (folder / "output/chtml/fonts/woff-v2").is_dir()


def _fetch_with_npm(dest: Path) -> str | None:
    """Unpack the needed part of ``mathjax@MATHJAX_VERSION`` from the npm registry into ``dest``.

    Returns None on success, else the reason it failed.
    """
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--pack-destination", tmp, "--silent"],
                           check=True, capture_output=True, text=True, timeout=300)
        except (subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            return f"`npm pack mathjax@{MATHJAX_VERSION}` failed: {detail.strip().splitlines()[-1:] or exc}"
        tarballs = list(Path(tmp).glob("mathjax-*.tgz"))
        if not tarballs:
            return "npm pack produced no tarball"
        staging = Path(tmp) / "mathjax"
        with tarfile.open(tarballs[0]) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                name = member.name
                if name == "package/LICENSE":
                    rel = "LICENSE"
                elif name.startswith("package/es5/"):
                    rel = name[len("package/es5/"):]
                    if not any(rel == keep or (keep.endswith("/") and rel.startswith(keep)) for keep in MATHJAX_KEEP):
                        continue
                else:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                target.write_bytes(source.read())
        if not _complete(staging):
            return "the npm package does not contain es5/" + MATHJAX_ENTRY
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dest = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp_dest, ignore_errors=True)
        shutil.copytree(staging, tmp_dest)
        shutil.rmtree(dest, ignore_errors=True)
        tmp_dest.rename(dest)
    return None


def find_mathjax() -> tuple[Path | None, str]:
    """The folder holding MathJax's es5 files (``tex-mml-chtml.js`` at its top), or None and the reason."""
    override = os.environ.get("FLOWEDU_MATHJAX_DIR")
    if override:
        folder = Path(override).expanduser()
        if _complete(folder):
            return folder, f"FLOWEDU_MATHJAX_DIR={folder}"
        return None, f"FLOWEDU_MATHJAX_DIR={folder} has no {MATHJAX_ENTRY} and output/chtml/fonts/woff-v2"
    cache = _cache_dir()
    if _complete(cache):
        return cache, f"cache {cache}"
    reason = _fetch_with_npm(cache)
    if reason is None and _complete(cache):
        return cache, f"npm registry, cached in {cache}"
    return None, reason or "unknown"


def _setup_mathjax(app, config) -> None:
    from sphinx.ext.mathjax import MATHJAX_URL

    if config.mathjax_path != MATHJAX_URL:
        return  # somebody chose a MathJax explicitly: leave it
    folder, how = find_mathjax()
    app.flowedu_mathjax = folder
    if folder is not None:
        config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
        logger.info(f"[flowedu_site] MathJax {MATHJAX_VERSION} is served with the book ({how})")
        return
    message = (f"[flowedu_site] MathJax could not be put into the book ({how}); the pages load it from the CDN "
               "and show a note where it does not load. Run `npm pack mathjax@3` with network access once, or "
               "set FLOWEDU_MATHJAX_DIR to an unpacked mathjax/es5 folder.")
    if os.environ.get("FLOWEDU_MATHJAX") == "required":
        logger.warning(message, type="flowedu", subtype="mathjax")
    else:
        logger.info(message, color="red")


def _copy_mathjax(app) -> None:
    folder = getattr(app, "flowedu_mathjax", None)
    if folder is None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    stamp = dest / ".flowedu-version"
    if stamp.is_file() and stamp.read_text() == MATHJAX_VERSION and (dest / MATHJAX_ENTRY).is_file():
        return
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(folder, dest)
    stamp.write_text(MATHJAX_VERSION)


# ------------------------------------------------------------------------------------- duplicate assets
def _key(asset) -> tuple:
    return (os.fspath(asset.filename or ""), tuple(sorted(asset.attributes.items())))


def _drop_duplicate_assets(app, pagename, templatename, context, doctree) -> None:
    for name in ("script_files", "css_files"):
        files = context.get(name)
        if not isinstance(files, list):
            continue
        seen, unique = set(), []
        for asset in files:
            key = _key(asset) if hasattr(asset, "attributes") else (str(asset),)
            if key not in seen:
                seen.add(key)
                unique.append(asset)
        files[:] = unique


# ------------------------------------------------------------------------------------------ bibliography
ARXIV_NOTE = re.compile(r"^\s*arXiv:\s*(?P<id>[\w.\-/]+?)(?:v\d+)?\s*(?:\((?P<year>\d{4})\))?\s*$")


def _register_bibliography_style() -> None:
    from pybtex.plugin import find_plugin, register_plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabelStyle(BaseLabelStyle):
        """Labels as the in-text citations read: "Kingma and Welling, 2014", "Rezende et al., 2014"."""

        @staticmethod
        def _names(entry) -> str:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            last = [" ".join(part.render_as("text") for part in p.rich_last_names) for p in persons]
            if not last:
                return entry.fields.get("key", entry.key)
            if len(last) == 1:
                return last[0]
            if len(last) == 2:
                return f"{last[0]} and {last[1]}"
            return f"{last[0]} et al."

        def format_labels(self, sorted_entries):
            labels = [f"{self._names(e)}, {e.fields.get('year', 'n.d.')}" for e in sorted_entries]
            repeated = Counter(labels)
            used: Counter = Counter()
            for label in labels:
                if repeated[label] > 1:  # two works by the same authors in one year: 2014a, 2014b
                    used[label] += 1
                    yield f"{label}{chr(ord('a') + used[label] - 1)}"
                else:
                    yield label

    class FloweduStyle(UnsrtStyle):
        """pybtex's unsrt entries, sorted by author, year and title, with author-year labels and links."""

        default_label_style = "flowedu"
        default_sorting_style = "author_year_title"

        def format_entry(self, label, entry, bib_data=None):
            note = entry.fields.get("note", "")
            match = ARXIV_NOTE.match(note) if note else None
            if match and "eprint" not in entry.fields:
                # "arXiv:1312.6114 (2013)" becomes a link through the eprint field (and is not repeated as a note)
                linked = entry.__class__(entry.type, fields=dict(entry.fields), persons=entry.persons)
                linked.key = entry.key
                linked.fields["eprint"] = match.group("id")
                del linked.fields["note"]
                entry = linked
            return super().format_entry(label, entry, bib_data=bib_data)

    register_plugin("pybtex.style.labels", "flowedu", AuthorYearLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", "flowedu", FloweduStyle, force=True)
    find_plugin("pybtex.style.formatting", "flowedu")  # fails here, not in a page, if registration broke


INLINE_MATH = re.compile(r"\$([^$]+)\$")


def _bibliography_maths(app, doctree, docname) -> None:
    """``$\\widehat{R}$`` in a bibliography entry (a title) is typeset as maths, not left as LaTeX source.

    pybtex hands the text over in pieces (``"$\\widehat "``, ``"R"``, ``"$"``), so runs of adjacent text nodes
    are joined before looking for ``$...$``.
    """
    from docutils import nodes

    found = False
    for citation in list(doctree.findall(nodes.citation)):
        for parent in list(citation.findall(nodes.Element)):
            children, run, rebuilt, changed = list(parent.children), [], [], False
            for child in children + [None]:
                if isinstance(child, nodes.Text):
                    run.append(child)
                    continue
                source = "".join(str(t) for t in run)
                if run and INLINE_MATH.search(source):
                    last = 0
                    for match in INLINE_MATH.finditer(source):
                        rebuilt += [nodes.Text(source[last:match.start()]), nodes.math(match.group(0), match.group(1))]
                        last = match.end()
                    rebuilt.append(nodes.Text(source[last:]))
                    changed = True
                else:
                    rebuilt += run
                run = []
                if child is not None:
                    rebuilt.append(child)
            if changed:
                parent.children = []
                parent.extend([n for n in rebuilt if not isinstance(n, nodes.Text) or str(n)])
                found = True
    if found:  # so that the page loads MathJax
        app.env.get_domain("math").data["has_equations"][docname] = True


# ------------------------------------------------------------------------------------------------- setup
def _config_inited(app, config) -> None:
    if str(STATIC) not in [os.fspath(p) for p in config.html_static_path]:
        config.html_static_path.append(str(STATIC))
    _setup_mathjax(app, config)


def setup(app):
    _register_bibliography_style()
    app.connect("config-inited", _config_inited, priority=800)
    app.connect("builder-inited", _copy_mathjax)
    app.connect("html-page-context", _drop_duplicate_assets, priority=990)
    app.connect("doctree-resolved", _bibliography_maths, priority=900)
    app.add_css_file("flowedu.css")
    app.add_js_file("flowedu.js", defer="defer")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
