"""tools/check_html.py on a two-page book built with the book's own site settings.

One page is what every page of the book should be (a long equation inside a definition, a long code line,
a captioned figure, a citation, the book's maths macros); the other carries one instance of each problem
the checker looks for. The test asserts that the checker passes the first and names each problem in the
second, so the checker itself can fail; it also checks what the site settings promise (author-year
bibliography with arXiv links, no duplicated scripts, MathJax served with the book or a visible note).

Needs headless Chromium (Debian's ``chromium``); skipped without it unless FLOWEDU_REQUIRE_CHROMIUM=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_html  # noqa: E402

LONG_SUM = " + ".join(f"\\frac{{x_{{{i}}}^2}}{{2\\sigma_{{{i}}}^2}}" for i in range(1, 31))

GOOD = f"""# A good page

Convergence is checked as in {{cite:t}}`vehtari2021rank`. The bound uses the book's macros:
$\\KL{{q}}{{p}} \\ge 0$ and $\\elbo(x) \\le \\log p(x)$, as in {{cite:t}}`kingma2014auto`.

```{{prf:definition}} A long definition
:label: good-def

$$
\\elbo(x) = \\E_{{q(z)}}[\\log p(x, z) - \\log q(z)] = {LONG_SUM}
$$
```

```{{prf:theorem}} A theorem after it
:label: good-thm

$\\KL{{q}}{{p}} = 0$ iff $q = p$.
```

```python
numbers = [1, 2, 3]  # a deliberately long line of code, much wider than the column of the book's text
```

```{{figure}} figure.png
:name: good-figure

A captioned figure.
```

```{{bibliography}}
```
"""

BAD = r"""# A bad page

<input type="search" id="second-search" placeholder="a second search box">
<script>
document.querySelector(".bd-sidebar-primary").prepend(document.getElementById("second-search"));
</script>

<script>console.error("deliberate console error");</script>
<script src="https://cdn.invalid/library.js"></script>

An equation cut off by its box:

<div style="overflow: hidden; width: 300px; border: 1px solid red">
<div class="math notranslate nohighlight" style="width: 1200px; max-width: none">
\[ a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p + q + r + s + t + u + v + w + x + y + z \]
</div>
</div>

Code that runs out of the column:

<pre style="overflow: visible">LONG_CODE</pre>

Two statements with one number:

<div class="proof theorem admonition"><p class="admonition-title">
<span class="caption-number">Theorem 9.1 </span></p></div>
<div class="proof lemma admonition"><p class="admonition-title">
<span class="caption-number">Lemma 9.1 </span></p></div>

A blank output area:

<div class="cell_output docutils container"><div class="output text_html" style="height: 120px"></div></div>

Raw LaTeX outside maths: \mathcal{X} and a machine path: /home/student/flowedu/data.

![](wide.png)
""".replace("LONG_CODE", "a_line_of_code = " + repr("far too long for the column, neither wrapped nor scrolled " * 3))


def _chromium():
    try:
        return check_html.find_chromium()
    except SystemExit:
        return None


def _png(path: Path, width: int, height: int, dpi: float = 100.0) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, width - 10, height - 10], outline="black", width=3)
    draw.line([10, height - 10, width - 10, 10], fill="blue", width=3)
    image.save(path, dpi=(dpi, dpi))


def _book_config() -> dict:
    """The book's own _config.yml, minus what a two-page test book cannot have (execution, repository)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    site = {key: value for key, value in config.items()
            if key in ("parse", "sphinx", "html", "latex") or key.startswith("bibtex_")}
    site["title"] = "check_html test book"
    site["only_build_toc_files"] = True
    site["execute"] = {"execute_notebooks": "off"}
    site["bibtex_bibfiles"] = ["refs.bib"]
    html = dict(site.get("html", {}))
    for key in ("baseurl", "use_repository_button", "use_issues_button", "use_edit_page_button"):
        html.pop(key, None)
    if "favicon" in html:
        html["favicon"] = str(ROOT / html["favicon"])
    site["html"] = html
    local = site.get("sphinx", {}).get("local_extensions") or {}
    site["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in local.items()}
    return site


def _need_chromium():
    if _chromium() is None:
        if os.environ.get("FLOWEDU_REQUIRE_CHROMIUM") == "1":
            pytest.fail("headless Chromium is required (FLOWEDU_REQUIRE_CHROMIUM=1) but not installed")
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")


def _build(book: Path, **env) -> subprocess.CompletedProcess:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book"), "build", str(book)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TQDM_DISABLE="1", **env))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _write_refs(book: Path) -> None:
    """Two entries of the book's bibliography, the second with maths in its title."""
    bib = (ROOT / "book" / "references.bib").read_text()
    entries = []
    for head in ("@inproceedings{kingma2014auto", "@article{vehtari2021rank"):
        start = bib.index(head)
        entries.append(bib[start: bib.index("\n}", start) + 2])
    (book / "refs.bib").write_text("\n\n".join(entries) + "\n")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    _need_chromium()
    book = tmp_path_factory.mktemp("book")
    (book / "_config.yml").write_text(yaml.safe_dump(_book_config(), sort_keys=False))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\ndefaults:\n  numbered: 1\nparts:\n"
                                   "  - caption: Part\n    chapters:\n      - file: good\n      - file: bad\n")
    (book / "index.md").write_text("# The test book\n\nTwo chapters follow.\n")
    (book / "good.md").write_text(GOOD)
    (book / "bad.md").write_text(BAD)
    _write_refs(book)
    _png(book / "figure.png", 640, 400)
    _png(book / "wide.png", 3000, 500)
    result = _build(book)
    html = book / "_build" / "html"
    out = book / "check"
    status = check_html.main([str(html), "--out", str(out), "--crops", "1"])
    report = json.loads((out / "report.json").read_text())
    pages = {page["page"]: page for page in report["pages"]}
    return {"html": html, "out": out, "status": status, "pages": pages, "build_log": result.stdout}


def test_good_page_passes(built_book):
    good = built_book["pages"]["good.html"]
    problems = {name: items for name, items in good["problems"].items() if items}
    if not (built_book["html"] / "_static" / "mathjax" / "tex-mml-chtml.js").exists():
        # MathJax could not be fetched for this build: the page must say so, and the checker must see raw LaTeX
        assert good["notes"] and "MathJax" in good["notes"][0], good["notes"]
        assert problems.pop("raw_latex", None), "raw LaTeX without MathJax went unnoticed"
        assert set(problems) <= {"console", "external"}, problems  # the CDN that failed
    else:
        assert good["mathjax"]["loaded"], good["mathjax"]
        assert problems == {}, problems
        kinds = sorted(item["kind"] for item in good["scrolls"])
        assert kinds == ["code", "maths"], good["scrolls"]  # the long equation and code line scroll in their boxes
    assert Path(good["screenshot"]).stat().st_size > 10_000


def test_bad_page_fails_on_each_problem(built_book):
    bad = built_book["pages"]["bad.html"]["problems"]
    assert built_book["status"] == 1
    texts = {name: " | ".join(str(item.get("text", "")) for item in items) for name, items in bad.items()}
    assert [item["kind"] for item in bad["clipped"]] == ["maths"], bad["clipped"]
    assert any(item["kind"] == "code" for item in bad["spills"]), bad["spills"]
    assert "deliberate console error" in texts["console"]
    assert "cdn.invalid" in texts["external"]
    assert len(bad["search"]) == 2, bad["search"]
    assert [item["height_px"] for item in bad["blank"]] == [120], bad["blank"]
    assert "wide.png" in texts["uncaptioned"], bad["uncaptioned"]
    assert "3000 px" in texts["small_text"], bad["small_text"]
    assert "\\mathcal" in texts["raw_latex"]
    assert "/home/student" in texts["paths"]
    assert "Theorem 9.1 (bad.html); Lemma 9.1 (bad.html)" in texts["numbering"], bad["numbering"]
    assert any(Path(item["screenshot"]).exists() for item in bad["clipped"])


def test_site_settings(built_book):
    html = built_book["html"]
    good = (html / "good.html").read_text()
    # author-year bibliography: the label as the text cites it, and the arXiv identifier as a link
    assert "Kingma and Welling, 2014" in good
    assert 'href="https://arxiv.org/abs/1312.6114"' in good
    labels = re.findall(r'role="doc-backlink"[^>]*>([^<]*)</a>', good)
    assert labels == ["Kingma and Welling, 2014", "Vehtari et al., 2021"], labels  # by author, not as cited
    assert r'<span class="math notranslate nohighlight">\(\widehat R\)</span>' in good  # maths in a title
    # one counter for definitions and theorems, and figures, numbered per chapter (the good page is chapter 1)
    numbers = re.findall(r'class="caption-number">([^<]*)<', good)
    assert [n.strip() for n in numbers] == ["Definition 1.1", "Theorem 1.2", "Fig. 1.1"], numbers
    # no script twice (sphinx-thebe's inline configuration used to be)
    scripts = [line.strip() for line in good.splitlines() if line.strip().startswith("<script")]
    assert len(scripts) == len(set(scripts)), [s for s in scripts if scripts.count(s) > 1]
    assert "require.min.js" not in (html / "bad.html").read_text()


def test_without_mathjax_the_page_says_so(tmp_path):
    """When MathJax cannot be put into the book, the build says so and the page shows a note (not bare LaTeX)."""
    _need_chromium()
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(_book_config(), sort_keys=False))
    _write_refs(tmp_path)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (tmp_path / "index.md").write_text("# Maths\n\n$$\n\\KL{q}{p} \\ge 0\n$$\n")
    result = _build(tmp_path, FLOWEDU_MATHJAX_DIR=str(tmp_path / "no-mathjax-here"))
    assert "MathJax could not be put into the book" in result.stdout
    out = tmp_path / "check"
    assert check_html.main([str(tmp_path / "_build" / "html"), "--out", str(out), "--crops", "0"]) == 1
    page = {p["page"]: p for p in json.loads((out / "report.json").read_text())["pages"]}["index.html"]
    assert page["notes"] and "could not be loaded from cdn.jsdelivr.net" in page["notes"][0], page["notes"]
    assert page["problems"]["raw_latex"] and "cdn.jsdelivr.net" in page["problems"]["external"][0]["text"]


def test_bibliography_style_on_the_books_references():
    """Every entry of book/references.bib formats in the book's style: unique author-year labels, sorted by
    author, arXiv notes and DOIs as links (no Chromium needed)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import flowedu_site
    from pybtex.backends.html import Backend
    from pybtex.database import parse_file
    from pybtex.plugin import find_plugin

    flowedu_site._register_bibliography_style()
    bib = parse_file(str(ROOT / "book" / "references.bib"))
    entries = list(find_plugin("pybtex.style.formatting", "flowedu")().format_entries(bib.entries.values()))
    labels = [entry.label for entry in entries]
    assert len(set(labels)) == len(labels) == len(bib.entries), labels
    assert all(re.fullmatch(r"[^,]+, (\d{4}[a-z]?|n\.d\.)", label) for label in labels), labels
    surnames = [label.split(",")[0].split(" and ")[0].split(" et al.")[0] for label in labels]
    assert surnames == sorted(surnames, key=str.lower), surnames
    html = {entry.key: entry.text.render(Backend()) for entry in entries}
    assert 'href="https://arxiv.org/abs/1312.6114"' in html["kingma2014auto"]  # from the note "arXiv:1312.6114 (2013)"
    assert "(2013)" not in html["kingma2014auto"]
    assert 'href="https://doi.org/10.1063/1.1699114"' in html["metropolis1953equation"]
