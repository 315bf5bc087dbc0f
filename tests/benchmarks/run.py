"""Run every benchmark (``tests/benchmarks/bench_*.py``); each prints one JSON line per measurement.

Benchmarks are never part of ``make test``: they measure time, which depends on the machine.
Extra packages that only benchmarks need (peer libraries to compare with) are pinned in
``tests/benchmarks/requirements.txt`` and installed by ``make bench``.

    python tests/benchmarks/run.py            # all
    python tests/benchmarks/run.py data vae   # bench_data.py and bench_vae.py
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = 0
    for script in scripts:
        print(f"# {script.name}", file=sys.stderr, flush=True)
        failed += subprocess.run([sys.executable, str(script)], cwd=HERE.parents[1]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
