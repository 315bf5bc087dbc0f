"""Wall time of each solution notebook in quick mode, one at a time, one math thread (a laptop's run).

    python tests/benchmarks/bench_notebooks.py [NAME ...] [--write]

Prints one JSON line per notebook. With ``--write`` it also stores the times in
``flowedu/timings.json`` (``quick_cpu`` entries), which ``config.setup(notebook=...)`` prints as the
expected wall time; the full-mode entries there come from ``results/full-cpu.json`` (``make results``)
and are left as they are. Run it on an idle machine: a busy one inflates every number.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from common import report
from flowedu.config import environment

ROOT = Path(__file__).resolve().parents[2]
TIMINGS = ROOT / "flowedu" / "timings.json"


def time_notebook(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    env = {"FLOWEDU_MODE": "quick", "FLOWEDU_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TQDM_DISABLE": "1"}
    with environment(env, unset=("FLOWEDU_SMOKE",)):
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start


def main(argv: list[str]) -> int:
    write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")]
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if names:
        paths = [p for p in paths if p.stem in names]
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {}
    cpu = f"{os.cpu_count()}-core {os.uname().machine} CPU"
    for path in paths:
        seconds = time_notebook(path)
        report(f"notebooks.quick.{path.stem}", seconds=round(seconds, 1))
        timings.setdefault(path.stem, {})["quick_cpu"] = {
            "seconds": round(seconds), "how": f"measured on a {cpu}, one math thread, {datetime.date.today()}"}
    if write:
        TIMINGS.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
        print(f"wrote {TIMINGS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
