"""Grade a filled-in exercise notebook without nbgrader: run it, then report every exercise.

    python -m flowedu.grade notebooks/exercises/vae.ipynb [more.ipynb ...] [--full-run]

Each code exercise is followed by a check cell (nbgrader metadata ``grade: true``, ``solution: false``,
with its ``points``); the exercise passes when its check cell runs without an error. Prose answers
(``solution: true`` markdown cells) cannot be checked by a program: they are listed as *answered* (for
a reader to grade) or *blank*, and count for their points only once a person grades them.

By default the notebook runs in quick mode with ``FLOWEDU_SMOKE=1`` (every training loop capped):
the checks compare a student's code with flowedu's reference and do not depend on how long anything
trains, so grading takes seconds per notebook. ``--full-run`` runs it as it is.

Needs ``nbformat`` and ``nbclient`` (``pip install "flowedu[grade]"``; Jupyter installs have both).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

TEXT_STUB = "YOUR ANSWER HERE"


@dataclass(frozen=True)
class Outcome:
    """One exercise: its nbgrader ``grade_id``, kind (``check`` or ``answer``), points and result."""

    grade_id: str
    kind: str
    points: float
    status: str  # "pass", "fail", "answered", "blank"
    message: str = ""

    @property
    def score(self) -> float:
        return self.points if self.status == "pass" else 0.0


def grade(path: str | os.PathLike, full_run: bool = False, timeout: int = 1800) -> list[Outcome]:
    """Execute the notebook at ``path`` (outputs are not saved) and return one outcome per exercise.

    Args:
        path: a filled-in exercise notebook (or a solution notebook).
        full_run: run in the environment's mode instead of quick mode with ``FLOWEDU_SMOKE=1``.
        timeout: seconds per cell.

    Raises:
        ValueError: if ``path`` is not a notebook with graded cells.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as err:  # pragma: no cover - both come with Jupyter
        raise ImportError("flowedu.grade needs nbformat and nbclient: pip install 'flowedu[grade]'") from err
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb file, got {str(path)!r}")
    nb = nbformat.read(path, as_version=4)
    graded = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    if not graded:
        raise ValueError(f"path {str(path)!r} has no graded cells (nbgrader metadata 'grade': true)")
    from flowedu.config import environment

    env = {} if full_run else {"FLOWEDU_MODE": "quick", "FLOWEDU_SMOKE": "1", "TQDM_DISABLE": "1"}
    with environment(env):
        NotebookClient(nb, timeout=timeout, allow_errors=True,
                       resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    outcomes = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        points = float(meta.get("points", 0))
        if meta.get("solution"):
            text = cell.source.strip()
            status = "blank" if not text or text == TEXT_STUB else "answered"
            outcomes.append(Outcome(meta.get("grade_id", "?"), "answer", points, status))
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            first = (errors[0].evalue or "").strip().splitlines()
            message = f"{errors[0].ename}: {first[0] if first else ''}"[:200]
            outcomes.append(Outcome(meta.get("grade_id", "?"), "check", points, "fail", message))
        else:
            outcomes.append(Outcome(meta.get("grade_id", "?"), "check", points, "pass"))
    return outcomes


def report(name: str, outcomes: list[Outcome]) -> str:
    """A per-exercise table with the automatic score and what needs a person."""
    width = max(len(o.grade_id) for o in outcomes)
    lines = [name, f"  {'exercise':<{width}}  {'kind':6} {'points':>6}  result"]
    for o in outcomes:
        result = {"pass": "pass", "fail": f"FAIL  {o.message}", "answered": "answered: a person grades it",
                  "blank": "blank"}[o.status]
        lines.append(f"  {o.grade_id:<{width}}  {o.kind:6} {o.points:6g}  {result}")
    automatic = [o for o in outcomes if o.kind == "check"]
    score, total = sum(o.score for o in automatic), sum(o.points for o in automatic)
    pending = sum(o.status == "answered" for o in outcomes)
    lines.append(f"  automatic score {score:g} / {total:g}; prose answers to read: {pending}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--full-run", action="store_true", help="run in the environment's mode, uncapped")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        outcomes = grade(path, full_run=args.full_run, timeout=args.timeout)
        print(report(str(path), outcomes))
        failed |= any(o.status == "fail" for o in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
