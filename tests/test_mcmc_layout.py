"""The MCMC chapter's room: flowedu.hmc is one package per the page book/hmc.md.

Every module of ``flowedu/hmc`` opens with its chapter and stays under the 400-line guide; the package
re-exports its public names explicitly; the old module paths (``flowedu.mcmc``, ``flowedu.vi``,
``flowedu.distributions.banana``, ``flowedu.metrics.divergences``) are gone.
"""

import ast
import importlib
from pathlib import Path

import pytest

import flowedu.hmc

PACKAGE = Path(flowedu.hmc.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_opens_with_its_chapter_and_is_small(path):
    source = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert docstring.startswith("Chapter: book/hmc.md"), path.name
    assert len(source.splitlines()) <= 400, f"{path.name} has {len(source.splitlines())} lines"


def test_package_reexports_every_public_name_explicitly():
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert "*" not in imported
    assert set(flowedu.hmc.__all__) == imported
    for path in MODULES:
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"flowedu.hmc.{path.stem}")
        missing = set(module.__all__) - set(flowedu.hmc.__all__)
        assert not missing, f"flowedu.hmc does not re-export {sorted(missing)} from {path.stem}"


@pytest.mark.parametrize("old", ["flowedu.mcmc", "flowedu.vi", "flowedu.distributions.banana",
                                 "flowedu.metrics.divergences"])
def test_the_old_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_the_kl_estimators_shared_with_other_chapters_are_the_mcmc_chapters():
    import flowedu.metrics

    for name in ("grid_kl", "knn_kl"):
        assert getattr(flowedu.metrics, name) is getattr(flowedu.hmc, name)
