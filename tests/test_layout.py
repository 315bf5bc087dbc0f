"""The package's layout shows the book: every module of a chapter's room opens with its chapter, no module
is over the 400-line guide, the subpackages re-export by explicit lists, and there is no import cycle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import flowedu

PACKAGE = Path(flowedu.__file__).parent
BOOK = PACKAGE.parent / "book"
ROOMS = {"vae": "vae.md", "flows": "flows.md", "hmc": "hmc.md", "proofs": "proofs.md", "gan": "gan.md", "gk": "gk.md"}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("room", ROOMS)
def test_every_module_of_a_room_opens_with_its_chapter(room):
    page = ROOMS[room]
    assert (BOOK / page).is_file(), page
    for path in sorted((PACKAGE / room).glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""
        assert doc.startswith(f"Chapter: book/{page} — "), f"{path.relative_to(PACKAGE)}: {doc[:60]!r}"


def test_no_module_is_over_the_400_line_guide():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_the_subpackages_and_the_package_name_their_exports_explicitly():
    for path in MODULES:
        source = path.read_text()
        assert "pkgutil" not in source and "reexport(" not in source.replace("def reexport(", ""), path
    assert set(flowedu.__all__) >= {"checks", "flows", "vae", "validate", "loops"}
    for name in flowedu.__all__[1:]:
        assert (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file(), name
    on_disk = {p.stem if p.name != "__init__.py" else p.parent.name for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert on_disk - {"__init__", "flowedu"} == set(flowedu.__all__[1:])
    assert flowedu.checks.check_close is flowedu.checks.core.check_close  # lazy submodule access works


def _imports(path: Path) -> set[str]:
    """The flowedu modules ``path`` imports at module level (not inside functions)."""
    found = set()
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("flowedu")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [module])
            if module.startswith("flowedu"):
                found.add(module.rstrip("."))
                found |= {f"{module}.{a.name}" for a in node.names}
    known = {_name(p) for p in MODULES}
    return {m for m in found if m in known} - {_name(path)}


def test_the_static_import_graph_has_no_cycle():
    graph = {_name(p): _imports(p) for p in MODULES}
    # importing a submodule runs its package's __init__ first
    for name in list(graph):
        parent = name.rpartition(".")[0]
        if parent and parent != "flowedu":
            graph[name] = graph[name] | {parent} - {name}
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodules is not a cycle
                continue
            if state.get(nxt) == "open" and not node.startswith(nxt + "."):
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("order", ["alphabetical", "reverse"])
def test_every_module_imports_in_a_fresh_interpreter_in_any_order(order):
    names = sorted(_name(p) for p in MODULES)
    names = names if order == "alphabetical" else names[::-1]
    code = f"import importlib\nfor name in {names!r}:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr[-2000:]
