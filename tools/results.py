"""Full-scale results: run notebooks in full mode, uncapped, record their numbers, and write the page.

    python tools/results.py run [NOTEBOOK ...]   # execute in full mode, merge into results/full-cpu.json
    python tools/results.py page                 # write book/results.md (and the full_cpu times of
                                                 # flowedu/timings.json) from results/full-cpu.json
    python tools/results.py page --check         # exit 1 if either is out of date

``make results`` does both for every notebook that fits a CPU. Each notebook runs in a fresh kernel
with ``FLOWEDU_MODE=full`` (no ``FLOWEDU_SMOKE``) and ``FLOWEDU_RESULTS`` pointing at a scratch file,
so every ``flowedu.config.record(...)`` in it lands in the results; its claims are checked as usual,
and a failing claim is recorded (with its message) rather than hidden. The page is generated, so it
never carries a hand-typed number.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "full-cpu.json"
PAGE = ROOT / "book" / "results.md"
TIMINGS = ROOT / "flowedu" / "timings.json"
# Image data for full mode on a machine without internet: Fashion-MNIST (Debian's package).
CPU_DATASET = "fashion-mnist"
# Notebooks whose full mode fits this CPU; the rest are listed on the page with the command that fills them.
CPU_NOTEBOOKS = ("getting_started", "vae", "vae_training", "vae_evaluation", "flow_layers", "flows_2d",
                 "banana_hmc", "banana_flows", "proofs_numeric", "dirac_gan", "gan_moons", "gk", "vae_flows")
GPU_NOTEBOOKS = {"gan_images": "convolutional GANs at full step counts on 28×28 and 32×32 images"}


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f"{os.cpu_count()}-core {cpu} CPU, torch {torch.__version__}, {threads} math thread{'s' * (threads != 1)}"


def timings(results: dict) -> str:
    """``flowedu/timings.json`` with each notebook's ``full_cpu`` wall time taken from the results.

    Only runs whose claims all held count; the other entries (``quick_cpu`` from ``make timings``,
    ``full_t4`` estimates) are kept as they are.
    """
    table = json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {}
    for name, entry in results.items():
        if entry["status"] != "all claims held":
            continue
        parts = entry["machine"].split(", ")  # "2-core x86_64 CPU, torch 2.14.1, 1 math thread"
        threads = parts[-1].replace("1 math threads", "1 math thread")  # older records said "threads"
        machine = f"{parts[0]} ({threads})" if len(parts) > 1 else parts[0]
        table.setdefault(name, {})["full_cpu"] = {
            "seconds": round(entry["seconds"]), "how": f"measured on a {machine}, {entry['date']}"}
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def run(names: list[str], timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    from flowedu.config import environment

    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in names:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as scratch:
            records_file = Path(scratch) / "records.jsonl"
            env = {"FLOWEDU_MODE": "full", "FLOWEDU_RESULTS": str(records_file), "TQDM_DISABLE": "1",
                   "FLOWEDU_DATASET": os.environ.get("FLOWEDU_DATASET", CPU_DATASET)}
            start = time.perf_counter()
            with environment(env, unset=("FLOWEDU_SMOKE",)):
                NotebookClient(nb, timeout=timeout, allow_errors=True,
                               resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds = time.perf_counter() - start
            records = [json.loads(line) for line in records_file.read_text().splitlines()] \
                if records_file.is_file() else []
        errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
                  if o.output_type == "error"]
        results[name] = {
            "notebook": f"notebooks/{name}.ipynb",
            "mode": "full",
            "dataset": env["FLOWEDU_DATASET"],
            "seconds": round(seconds, 1),
            "date": datetime.date.today().isoformat(),
            "machine": _machine(),
            "status": "all claims held" if not errors else "failed: " + "; ".join(errors),
            "records": [{k: r[k] for k in ("key", "value", "unit", "note", "dataset")} for r in records],
        }
        print(f"{name}: {seconds / 60:.1f} min, {len(records)} numbers, {results[name]['status']}", flush=True)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        TIMINGS.write_text(timings(results))
    return results


def _value(value) -> str:
    if isinstance(value, str):
        return value
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def page(results: dict) -> str:
    lines = [
        "# Full-scale results",
        "",
        "The book's pages are built in quick mode, so that they build on a laptop in minutes. This page",
        "shows what **full mode** gives, the sizes behind the published numbers, run uncapped. Every number",
        "here was computed by a notebook and recorded with `flowedu.config.record`; the page is generated",
        "from `results/full-cpu.json` by `make results` (never typed by hand), and each notebook's claims",
        "were checked in the same run.",
        "",
        "```{note}",
        "Where the published reference is on MNIST or CIFAR-10, the numbers below are on the data set",
        f"named in each section ({CPU_DATASET} where images are needed): this machine has no internet,",
        "and Fashion-MNIST ships as a Debian package. They are therefore **not** comparable with the",
        "MNIST numbers in the papers; the MNIST claims are asserted when a notebook runs on Colab with",
        "MNIST (full mode's default there).",
        "```",
        "",
    ]
    for name in CPU_NOTEBOOKS:
        entry = results.get(name)
        lines.append(f"## `{name}`")
        lines.append("")
        if entry is None:
            lines += [f"Not yet run. Fill it with `python tools/results.py run {name}` (or `make results`).", ""]
            continue
        lines += [
            f"[The notebook](../{entry['notebook']}) in {entry['mode']} mode on **{entry['dataset']}** "
            f"where it uses images; wall time {_duration(entry['seconds'])} on a {entry['machine']} "
            f"({entry['date']}). Claims: {entry['status']}.",
            "",
        ]
        if entry["records"]:
            lines += ["| quantity | value | unit | what it is |", "| --- | ---: | --- | --- |"]
            for record in entry["records"]:
                quantity = record["key"].split(".", 1)[1]
                lines.append(f"| `{quantity}` | {_value(record['value'])} | {record['unit']} | {record['note']} |")
            lines.append("")
        else:
            lines += ["This notebook recorded no numbers.", ""]
    lines += ["## Runs that need a GPU", ""]
    for name, what in GPU_NOTEBOOKS.items():
        entry = results.get(name)
        if entry is None:
            lines += [f"- `{name}` ({what}): **not yet run**. On a CUDA machine (e.g. Colab), run",
                      f"  `python tools/results.py run {name}` and then `python tools/results.py page`.", ""]
        else:
            lines += [f"- `{name}`: run on {entry['machine']}, {_duration(entry['seconds'])}; "
                      "see results/full-cpu.json.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("notebooks", nargs="*", help=f"default: {' '.join(CPU_NOTEBOOKS)}")
    run_parser.add_argument("--timeout", type=int, default=6 * 3600, help="seconds per cell")
    page_parser = sub.add_parser("page")
    page_parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        unknown = [n for n in args.notebooks if not (ROOT / "notebooks" / f"{n}.ipynb").is_file()]
        if unknown:
            parser.error(f"no such notebook: {', '.join(unknown)}")
        run(args.notebooks or list(CPU_NOTEBOOKS), args.timeout)
        return 0
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    text, table = page(results), timings(results)
    if args.check:
        stale = [path.name for path, new in ((PAGE, text), (TIMINGS, table))
                 if not path.is_file() or path.read_text() != new]
        for path in stale:
            print(f"{path} is out of date with results/full-cpu.json: run `python tools/results.py page`",
                  file=sys.stderr)
        return 1 if stale else 0
    PAGE.write_text(text)
    TIMINGS.write_text(table)
    print(f"wrote {PAGE} and {TIMINGS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
