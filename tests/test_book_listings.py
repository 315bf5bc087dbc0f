"""Every code listing on a chapter page points at code that exists: the ``:pyobject:`` and the
``:start-at:``/``:end-at:``/``:start-after:``/``:end-before:`` lines inside it (a refactor that renames a line
otherwise breaks only the strict book build, minutes later)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LISTING = re.compile(r"```\{literalinclude\} ([^\n]+)\n((?::[^\n]*\n)*)")
LISTINGS = [(page, m.group(1).strip(), m.group(2)) for page in sorted((ROOT / "book").glob("*.md"))
            for m in LISTING.finditer(page.read_text(encoding="utf-8"))]


def _object_source(source: str, dotted: str) -> str | None:
    node = ast.parse(source)
    for name in dotted.split("."):
        found = [c for c in ast.iter_child_nodes(node)
                 if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and c.name == name]
        if not found:
            return None
        node = found[0]
    first = node.lineno - len(node.decorator_list)
    return "\n".join(source.splitlines()[first - 1:node.end_lineno])


def test_the_pages_have_listings():
    assert len(LISTINGS) > 10


@pytest.mark.parametrize(("page", "target", "options"), LISTINGS,
                         ids=[f"{p.stem}-{i}" for i, (p, _, _) in enumerate(LISTINGS)])
def test_listing_points_at_existing_code(page, target, options):
    path = (page.parent / target).resolve()
    assert path.is_file(), f"{page.name}: {target} does not exist"
    source = path.read_text(encoding="utf-8")
    segment = source
    pyobject = re.search(r":pyobject: (\S+)", options)
    if pyobject:
        segment = _object_source(source, pyobject.group(1))
        assert segment is not None, f"{page.name}: {pyobject.group(1)} is not in {target}"
    for key in ("start-at", "end-at", "start-after", "end-before"):
        match = re.search(rf":{key}: (.+)", options)
        if match:
            pattern = match.group(1).strip().strip('"')
            where = f"{target} {pyobject.group(1)}" if pyobject else target
            assert pattern in segment, f"{page.name}: :{key}: {pattern!r} is not in {where}"
