"""Run modes, budgets, claims, device choice and seeding, shared by every notebook.

``FLOWEDU_MODE`` selects the sizes a notebook trains at:

* ``quick`` -- the whole book runs on a laptop CPU in minutes on data that needs no network
  (the default when no CUDA GPU is present); this is what the published HTML shows;
* ``full`` -- the sizes that reach the published numbers (the default with CUDA, e.g. Colab),
  each notebook within about 15 minutes on a Colab T4;
* ``full`` with ``FLOWEDU_LONG=1`` -- the longer runs some published numbers need (each notebook
  says how long).

Two more switches, for tests and instructors rather than readers:

* ``FLOWEDU_SMOKE=1`` caps every loop budget (:func:`steps`) and evaluation size (:func:`size`)
  to a handful, keeping the mode's models, data path and evaluation code: it proves that a mode's
  code path runs, in CI, in minutes. Claims about trained results (:func:`claim`) are then printed
  as skipped, with the reason, instead of asserted.
* ``FLOWEDU_RESULTS=<file.json>`` makes :func:`record` append each recorded number to that file
  (``make results`` builds ``book/results.md`` from it).

Notebooks never test these switches themselves: they ask for a budget with ``config.steps(quick=...,
full=...)`` and state results with ``config.claim(...)``, and this module decides.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

MODES = ("quick", "full")
MODE_ENV = "FLOWEDU_MODE"
DATASET_ENV = "FLOWEDU_DATASET"
SMOKE_ENV = "FLOWEDU_SMOKE"
LONG_ENV = "FLOWEDU_LONG"
RESULTS_ENV = "FLOWEDU_RESULTS"
THREADS_ENV = "FLOWEDU_THREADS"
IMAGE_DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10")
# Under FLOWEDU_SMOKE: every loop runs at most SMOKE_STEPS iterations (steps or epochs), every
# evaluation uses at most SMOKE_SIZE items (unless the call names its own ``smoke=`` size).
SMOKE_STEPS = 2
SMOKE_SIZE = 64
# What the last setup() call said about the running notebook (its data set), for record().
_session: dict = {}


def mode() -> str:
    """The run mode: ``FLOWEDU_MODE`` if set, else ``"full"`` with CUDA and ``"quick"`` without.

    Raises:
        ValueError: if ``FLOWEDU_MODE`` is set to anything but ``quick`` or ``full``.
    """
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def is_quick() -> bool:
    """True in quick mode."""
    return mode() == "quick"


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be 0 or 1 (or unset), got {value!r}")


def is_smoke() -> bool:
    """True when ``FLOWEDU_SMOKE=1``: loop budgets and evaluation sizes are capped, claims skipped.

    Raises:
        ValueError: if ``FLOWEDU_SMOKE`` is set to anything but 0/1 (true/false, yes/no).
    """
    return _flag(SMOKE_ENV)


def is_long() -> bool:
    """True in full mode with ``FLOWEDU_LONG=1`` (the long runs behind some published numbers)."""
    return mode() == "full" and _flag(LONG_ENV)


def by_mode(*, quick, full, long=None):
    """Return ``quick`` or ``full`` according to :func:`mode` (``long`` under ``FLOWEDU_LONG=1``).

    For settings that do not change under ``FLOWEDU_SMOKE`` (architectures, learning rates); loop
    budgets go through :func:`steps` and evaluation sizes through :func:`size`.

    Example: ``hidden = by_mode(quick=(256,), full=(512, 256))``.
    """
    if is_quick():
        return quick
    return long if long is not None and is_long() else full


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def steps(*, quick: int, full: int, long: int | None = None) -> int:
    """The length of a training loop (optimiser steps, epochs, MCMC iterations) in this mode.

    Under ``FLOWEDU_SMOKE=1`` the value is capped at ``SMOKE_STEPS``, so the loop still runs the
    mode's code path, only briefly.

    Example: ``n_epochs = config.steps(quick=40, full=20)``.

    Raises:
        ValueError: if a value is not a positive integer.
    """
    value = _count(by_mode(quick=_count(quick, "quick"), full=_count(full, "full"),
                           long=None if long is None else _count(long, "long")), "steps")
    return min(value, SMOKE_STEPS) if is_smoke() else value


def size(*, quick: int, full: int, long: int | None = None, smoke: int = SMOKE_SIZE) -> int:
    """A sample or evaluation size (test images scored, Monte Carlo draws, chains) in this mode.

    Under ``FLOWEDU_SMOKE=1`` the value is capped at ``smoke`` (default ``SMOKE_SIZE``).

    Example: ``n_eval = config.size(quick=500, full=10_000)``.

    Raises:
        ValueError: if a value is not a positive integer.
    """
    value = _count(by_mode(quick=_count(quick, "quick"), full=_count(full, "full"),
                           long=None if long is None else _count(long, "long")), "size")
    return min(value, _count(smoke, "smoke")) if is_smoke() else value


class ClaimError(AssertionError):
    """A claim the text makes about a result did not hold."""


def claim(condition, message: str, *, datasets: tuple[str, ...] | None = None) -> None:
    """State a claim about a trained result: asserted, or reported as skipped under ``FLOWEDU_SMOKE``.

    Use it for every number or comparison that depends on how long something trained (thresholds,
    orderings); keep plain ``assert`` for what holds whatever the budget (identities, shapes,
    bounds such as KL >= 0). It returns nothing, so a cell that ends with a claim shows no output.

    Args:
        condition: the claim's truth value (a bool, or anything ``bool()`` accepts, e.g. a 0-d tensor).
        message: the claim in words with its numbers, e.g. ``f"test NLL {nll:.3f} < 1.9"``.
        datasets: the image data sets the claim was measured on; on any other data set (the one
            :func:`setup` was given) it is printed with its outcome, not asserted.

    Raises:
        ClaimError: when the claim was checked and does not hold.
    """
    if not isinstance(message, str) or not message:
        raise ValueError("message must be a non-empty string saying what is claimed")
    if datasets is not None:
        if isinstance(datasets, str) or not all(d in IMAGE_DATASETS for d in datasets):
            raise ValueError(f"datasets must be a tuple of {', '.join(IMAGE_DATASETS)}, got {datasets!r}")
        dataset = _session.get("dataset") or default_dataset()
        if dataset not in datasets:
            outcome = "holds" if bool(condition) else "DOES NOT HOLD"
            print(f"[claim not asserted on {dataset}: measured on {', '.join(datasets)} only] {message}: {outcome}")
            return
    if is_smoke():
        print(f"[claim skipped: {SMOKE_ENV}=1 caps the training, so this result is not expected] {message}")
        return
    if not bool(condition):
        raise ClaimError(message)


def record(key: str, value, *, unit: str = "", note: str = "") -> None:
    """Record a result for the results page: appended to the JSON-lines file ``$FLOWEDU_RESULTS``.

    Does nothing when ``FLOWEDU_RESULTS`` is unset (the usual case) and under ``FLOWEDU_SMOKE``.
    Each line holds the key, value, unit, note, mode, data set, device and time.

    Args:
        key: a dotted name, ``"<notebook>.<quantity>"``, e.g. ``"vae_evaluation.test_ll"``.
        value: a finite number (converted with ``float``), or a short string.
        unit: e.g. ``"nats"``.
        note: what the number is, in a few words.
    """
    if not isinstance(key, str) or "." not in key:
        raise ValueError(f"key must be a dotted name '<notebook>.<quantity>', got {key!r}")
    if not isinstance(value, str):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"value must be finite, got {value} for {key}")
    path = os.environ.get(RESULTS_ENV)
    if not path or is_smoke():
        return
    line = {"key": key, "value": value, "unit": unit, "note": note, "mode": mode(), "long": is_long(),
            "dataset": _session.get("dataset") or default_dataset(), "device": str(device()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dataset() -> str:
    """The default image data set: ``FLOWEDU_DATASET`` if set, else ``mnist`` (full) or ``digits`` (quick).

    Raises:
        ValueError: if ``FLOWEDU_DATASET`` names an unknown data set.
    """
    value = os.environ.get(DATASET_ENV, "").strip().lower()
    if not value:
        return by_mode(quick="digits", full="mnist")
    if value not in IMAGE_DATASETS:
        raise ValueError(f"{DATASET_ENV} must be one of {', '.join(IMAGE_DATASETS)}, got {value!r}")
    return value


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a CPU ``torch.Generator`` seeded alike.

    Args:
        seed: a non-negative integer below 2**63.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG that libraries use
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def progress_enabled(progress: bool = True) -> bool:
    """Whether to show a progress bar: ``progress``, unless ``TQDM_DISABLE`` is set (the book build sets it).

    Training loops pass ``disable=not config.progress_enabled(progress)`` to ``tqdm.auto``: an explicit
    ``disable=`` would otherwise override the environment, and the built book would carry invisible bars.
    """
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("1", "true", "yes")


TIMINGS_FILE = Path(__file__).with_name("timings.json")


TIMING_LABELS = {
    "quick_cpu": "quick mode on a laptop CPU",
    "full_t4": "full mode on a Colab T4",
    "full_cpu": "full mode on a 2-core CPU",
    "long_t4": "FLOWEDU_LONG=1 on a Colab T4",
}


def expected_time(notebook: str) -> str | None:
    """One sentence on how long ``notebook`` takes in each mode, or None when nothing is known.

    The numbers live in ``flowedu/timings.json`` (quick mode: ``make timings``; full mode on a CPU:
    ``make results``; a T4 where someone measured or estimated it). Each says whether it was measured
    or estimated, and on what.
    """
    if not TIMINGS_FILE.is_file():
        return None
    entry = json.loads(TIMINGS_FILE.read_text(encoding="utf-8")).get(notebook) or {}
    parts = [f"{label}: {_minutes(entry[key]['seconds'])} ({entry[key]['how']})"
             for key, label in TIMING_LABELS.items() if key in entry]
    return "Expected wall time: " + "; ".join(parts) + "." if parts else None


def _minutes(seconds: float) -> str:
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def threads() -> int | None:
    """Math threads per process: ``FLOWEDU_THREADS`` if set, else 1 in quick mode, else None (torch's default).

    One thread per process is faster on a small CPU as soon as anything else runs (two notebooks,
    a test worker, a browser): the threads otherwise fight over the cores.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return 1 if is_quick() else None


@contextmanager
def environment(values: Mapping[str, str], unset: tuple[str, ...] = ()) -> Iterator[None]:
    """Set the environment variables ``values`` (and remove those in ``unset``) for the ``with`` block.

    Kernels started inside the block (nbclient) inherit them: this is how the tools run a notebook in a
    given mode. The previous values come back afterwards, also when the block raises.
    """
    if not isinstance(values, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in values.items()):
        raise ValueError(f"values must map names to strings, got {values!r}")
    saved = {key: os.environ.get(key) for key in (*values, *unset)}
    os.environ.update(values)
    for key in unset:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def setup(seed: int = 0, dataset: str | None = None, notebook: str | None = None) -> dict:
    """Seed everything, set the math threads and print the mode, device, data set, versions and time.

    Args:
        seed: passed to :func:`seed_everything`.
        dataset: the data set this notebook uses; ``None`` means :func:`default_dataset`,
            ``"none"`` means the notebook uses no image data.
        notebook: the notebook's name (e.g. ``"vae"``): prints its expected wall time.

    Returns:
        A dict with keys ``mode``, ``device``, ``dataset``, ``generator``.
    """
    import flowedu

    seed_everything(seed)
    n_threads = threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    info = {
        "mode": mode(),
        "device": device(),
        "dataset": default_dataset() if dataset is None else dataset,
    }
    _session.update(dataset=info["dataset"], notebook=notebook)
    flags = "".join(f" | {name}=1" for name, on in ((SMOKE_ENV, is_smoke()), (LONG_ENV, is_long())) if on)
    print(
        f"flowedu {flowedu.__version__} | mode: {info['mode']}{flags} | device: {info['device']} | "
        f"dataset: {info['dataset']} | math threads: {torch.get_num_threads()}\n"
        f"torch {torch.__version__} | numpy {np.__version__} | python {platform.python_version()}"
    )
    if notebook is not None:
        sentence = expected_time(notebook)
        if sentence:
            print(sentence)
    if info["mode"] == "full" and not is_smoke():
        print(f"Full mode: the sizes behind the published numbers. For a first look in minutes, run "
              f"`%env {MODE_ENV}=quick` in a cell and then run this cell again.")
    info["generator"] = torch.Generator().manual_seed(seed)
    return info
