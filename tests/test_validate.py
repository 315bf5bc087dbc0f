"""One validation module: the same rule for the same kind of argument everywhere, and no pasted copies."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from flowedu import flows, gan, hmc, proofs, vae, validate

PACKAGE = Path(flowedu_path := validate.__file__).parent
OWNED_ELSEWHERE = {"config.py", "data.py", "grade.py"}  # the lead's modules, with their own checks


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_integer_accepts_every_integral_type_and_returns_int(value):
    out = validate.integer(value, "n", 1)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize(("value", "minimum", "maximum", "message"), [
    (True, 1, None, "n must be an integer >= 1, got True"),
    (0, 1, None, "n must be an integer >= 1, got 0"),
    (2.0, 1, None, "n must be an integer >= 1, got 2.0"),
    (np.float64(2), None, None, "n must be an integer, got"),
    ("3", 0, 5, "n must be an integer in [0, 5], got '3'"),
    (6, 0, 5, "n must be an integer in [0, 5], got 6"),
    (1, None, 0, "n must be an integer <= 0, got 1"),
])
def test_integer_rejects_bools_floats_and_out_of_range_values_naming_the_range(value, minimum, maximum, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate.integer(value, "n", minimum, maximum)


def test_integer_bounds_are_inclusive():
    assert validate.integer(0, "n", 0, 0) == 0
    assert validate.optional_integer(None, "copies", 1) is None
    with pytest.raises(ValueError, match=re.escape("copies must be None or an integer >= 1, got 0")):
        validate.optional_integer(0, "copies", 1)


@pytest.mark.parametrize(("kwargs", "good", "bad", "allowed"), [
    ({"above": 0}, [1e-9, 3, np.float32(2.0), torch.tensor(0.5)], [0, -1.0, float("inf"), float("nan"), True, "1"],
     "> 0"),
    ({"at_least": 0}, [0, 0.0, 7], [-1e-12, float("inf")], ">= 0"),
    ({"at_least": 0, "below": 1}, [0.0, 0.999], [1.0, -0.1], "in [0, 1)"),
    ({"above": 0, "at_most": 1}, [1.0, 1e-6], [0.0, 1.5], "in (0, 1]"),
])
def test_real_is_finite_and_in_range(kwargs, good, bad, allowed):
    for value in good:
        assert isinstance(validate.real(value, "x", **kwargs), float)
    for value in bad:
        with pytest.raises(ValueError, match=re.escape(f"x must be finite and {allowed}, got")):
            validate.real(value, "x", **kwargs)


def test_shapes():
    assert validate.sample_shape(5) == (5,) and validate.sample_shape(()) == ()
    assert validate.sample_shape((np.int64(2), 3)) == (2, 3)
    assert validate.data_shape(784) == (784,) and validate.data_shape((1, 28, 28)) == (1, 28, 28)
    for bad in [(-1,), (True,), 2.0, "ab"]:
        with pytest.raises(ValueError, match="sample_shape must be"):
            validate.sample_shape(bad)
    for bad in [(), 0, (1, 0), None]:
        with pytest.raises(ValueError, match="data_shape must be"):
            validate.data_shape(bad)


@pytest.mark.parametrize("make", [
    lambda n: flows.StandardNormal(n),
    lambda n: flows.realnvp(2, n_couplings=n, hidden=4),
    lambda n: vae.MixturePrior(n, 2),
    lambda n: hmc.leapfrog(torch.zeros(1, 2), torch.zeros(1, 2), lambda t: -t, 0.1, n),
    lambda n: proofs.random_distribution(n, np.random.default_rng(0)),
    lambda n: gan.MLPGenerator(n, 2),
])
def test_numpy_integers_are_accepted_across_chapters(make):
    """The issue: hmc accepted np.int64 while fit_density and toy2d refused it. Now every chapter accepts it."""
    make(np.int64(2))
    with pytest.raises(ValueError, match="must be an integer"):
        make(True)


def _python_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name not in OWNED_ELSEWHERE and p.name != "validate.py")


def test_no_pasted_integer_checks_remain():
    pasted = re.compile(r"isinstance\(\w+, bool\) or not isinstance\(\w+, \(?(int|numbers\.Integral)")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in _python_files()
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pasted.search(line)]
    assert not offenders, f"use flowedu.validate.integer instead of a pasted check: {offenders}"


def test_no_private_names_imported_across_modules():
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flowedu"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private or any(part.startswith("_") and not part.startswith("__")
                                  for part in node.module.split(".")):
                    offenders.append(f"{path.relative_to(PACKAGE)}: from {node.module} import {private or '...'}")
    assert not offenders, offenders
