"""Authoring aid: execute one notebook, print each code cell's wall time and errors, save its figures.

    .venv/bin/python tools/run_notebook.py notebooks/flows_2d.ipynb [--out DIR] [--timeout S]

The mode comes from the environment as usual (``FLOWEDU_MODE``, ``FLOWEDU_SMOKE``, ...); math
threads default to one per process (``OMP_NUM_THREADS=1``) unless set. The executed notebook and
every image it displayed are written to ``DIR`` (default ``/tmp/nbrun/<name>``) as
``executed.ipynb`` and ``cell<NN>_<k>.png``, so figures can be looked at next to the text that
describes them. Exit status 1 if a cell failed.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--text", action="store_true", help="also print each cell's text output")
    args = parser.parse_args(argv)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("FLOWEDU_MODE", "quick")
    out = args.out or Path("/tmp/nbrun") / args.notebook.stem
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("cell*.png"):
        old.unlink()

    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, timeout=args.timeout, allow_errors=True,
                            resources={"metadata": {"path": str(args.notebook.resolve().parent)}})
    times: dict[int, float] = {}
    started: dict[int, float] = {}

    def before(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def after(cell, cell_index, **_):
        times[cell_index] = time.perf_counter() - started.get(cell_index, time.perf_counter())

    client.on_cell_execute = before
    client.on_cell_executed = after
    start = time.perf_counter()
    client.execute()
    total = time.perf_counter() - start
    nbformat.write(nb, out / "executed.ipynb")

    failed = False
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        first = cell.source.strip().splitlines()[0][:70] if cell.source.strip() else ""
        print(f"cell {index:3d} {times.get(index, 0.0):8.1f} s  {first}")
        for k, output in enumerate(cell.get("outputs", [])):
            if args.text and output.output_type == "stream" and output.name == "stdout":
                print("    | " + output.text.rstrip()[-3000:].replace("\n", "\n    | "))
            if output.output_type == "error":
                failed = True
                print(f"    ERROR {output.ename}: {output.evalue}")
            png = output.get("data", {}).get("image/png") if output.output_type in ("display_data",
                                                                                   "execute_result") else None
            if png:
                (out / f"cell{index:02d}_{k}.png").write_bytes(base64.b64decode(png))
    print(f"total {total:.1f} s; executed notebook and figures in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
