"""Helpers for benchmarks: timing with warm-up and repeats, and the one-JSON-line report."""

import json
import platform
import statistics
import time

import torch


def best_of(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, **figures) -> None:
    """Print one JSON line: the benchmark's name, its figures and the machine."""
    line = {"benchmark": name, **figures, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "device": "cuda" if torch.cuda.is_available() else "cpu"}
    print(json.dumps(line), flush=True)
