"""Report what the book's jupyter-cache executed: each notebook's wall time, and every failure.

    .venv/bin/python tools/book_cache.py _build/test/_build/.jupyter_cache

The book's notebooks run once, in parallel, into the cache (``make book``/``make book-strict``);
jupyter-book then renders from it. This runs in between: it prints one line per notebook with its
execution time, prints the traceback of every notebook that failed, and exits 1 if any did, so a
failing assert stops the build at once with the cell that failed instead of being re-executed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_cache import get_cache


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    cache = get_cache(argv[0])
    failed = 0
    total = 0.0
    for record in sorted(cache.list_project_records(), key=lambda r: r.uri):
        name = Path(record.uri).name
        cached = cache.get_cached_project_nb(record.pk)
        if record.traceback or cached is None:
            failed += 1
            print(f"FAILED  {name}")
            print("\n".join((record.traceback or "no cached outputs and no traceback").splitlines()[-25:]))
            continue
        seconds = (cached.data or {}).get("execution_seconds")
        total += seconds or 0.0
        print(f"{seconds:8.1f} s  {name}" if seconds is not None else f"       ? s  {name}")
    print(f"{total:8.1f} s  in all (sum of the notebooks' own wall times)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
