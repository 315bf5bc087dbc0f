"""The MCMC chapter's room: flowedu.hmc is one package per the page book/hmc.md, and the old paths still work.

Every module of ``flowedu/hmc`` opens with its chapter and stays under the 400-line guide; the package
re-exports its public names explicitly; the old module paths (``flowedu.mcmc``, ``flowedu.vi``,
``flowedu.distributions.banana``, ``flowedu.metrics.divergences``) are thin shims over it.
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


@pytest.mark.parametrize("old, names", [
    ("flowedu.mcmc", ["DualAveraging", "HMCResult", "ess", "hmc", "hmc_accept", "hmc_accepted_only", "leapfrog",
                      "log_prob_and_grad", "split_rhat"]),
    ("flowedu.vi", ["elbo_terms", "fit_elbo"]),
    ("flowedu.distributions.banana", ["BANANA_SEED", "BANANA_THETA", "BananaGrid", "BananaPosterior", "banana_data"]),
    ("flowedu.metrics.divergences", ["grid_kl", "knn_kl"]),
])
def test_old_paths_are_shims_over_flowedu_hmc(old, names):
    module = importlib.import_module(old)
    for name in names:
        assert getattr(module, name) is getattr(flowedu.hmc, name), f"{old}.{name}"
    package = importlib.import_module(old.rsplit(".", 1)[0])
    if package.__name__ in ("flowedu.distributions", "flowedu.metrics"):
        for name in names:
            assert getattr(package, name) is getattr(flowedu.hmc, name)
