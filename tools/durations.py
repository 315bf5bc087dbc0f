"""Pass pytest's output through and add each notebook's total time from its ``--durations=0`` lines.

    pytest --nbval-lax --durations=0 notebooks/*.ipynb | python tools/durations.py

nbval reports one test per cell (``notebooks/vae.ipynb::Cell 7``); this sums them per notebook, so
the log of ``make smoke`` says how long each notebook's capped full-mode run took.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([\d.]+)s (?:call|setup|teardown)\s+(\S+?\.ipynb)::")


def main() -> int:
    totals: dict[str, float] = defaultdict(float)
    for line in sys.stdin:
        match = LINE.match(line)
        if match:
            totals[match.group(2)] += float(match.group(1))
            continue  # the per-cell lines are summed below instead
        sys.stdout.write(line)
        sys.stdout.flush()
    if totals:
        print("seconds per notebook (sum of its cells):")
        for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"{seconds:8.1f}  {name}")
        print(f"{sum(totals.values()):8.1f}  in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
