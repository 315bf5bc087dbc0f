"""Build the book without solutions, for students: ``make book-students`` -> _build/students/_build/html.

The exercise notebooks (``notebooks/exercises/``) take the place of their solution notebooks in the
table of contents, unexecuted (their blanks would only raise); notebooks without exercises run as usual;
and sphinx-exercise leaves out the solutions on the chapter pages (``hide_solutions``). The book's own
``_config.yml`` and ``_toc.yml`` are not changed: this writes a variant of each into
``_build/students/`` and builds from those.

    python tools/student_book.py [--only-config]   # --only-config: write the variants, do not build
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "students"


def student_config(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["exclude_patterns"] = [p for p in config.get("exclude_patterns", []) if "exercises" not in p]
    execute = config.setdefault("execute", {})
    execute["exclude_patterns"] = [*execute.get("exclude_patterns", []), "notebooks/exercises/*"]
    sphinx_section = config.setdefault("sphinx", {})
    # local extensions are found relative to the config file: this one lives in _build/students/
    sphinx_section["local_extensions"] = {
        name: str((ROOT / path).resolve()) for name, path in (sphinx_section.get("local_extensions") or {}).items()}
    sphinx = sphinx_section.setdefault("config", {})
    sphinx["hide_solutions"] = True
    config["title"] = f"{config.get('title', 'flowedu')} (student edition)"
    return config


def student_toc(toc, root: Path = ROOT):
    """``_toc.yml`` with every notebook that has an exercise version replaced by it."""
    if isinstance(toc, dict):
        out = {}
        for key, value in toc.items():
            if key == "file" and isinstance(value, str) and value.startswith("notebooks/"):
                name = value.removeprefix("notebooks/")
                if (root / "notebooks" / "exercises" / f"{name}.ipynb").is_file():
                    value = f"notebooks/exercises/{name}"
            out[key] = student_toc(value, root)
        return out
    if isinstance(toc, list):
        return [student_toc(item, root) for item in toc]
    return toc


def write_variants(root: Path = ROOT, out: Path = OUT) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    config = student_config(yaml.safe_load((root / "_config.yml").read_text()))
    toc = student_toc(yaml.safe_load((root / "_toc.yml").read_text()), root)
    config_path, toc_path = out / "_config.yml", out / "_toc.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    return config_path, toc_path


def main(argv: list[str]) -> int:
    config_path, toc_path = write_variants()
    if "--only-config" in argv:
        print(f"wrote {config_path} and {toc_path}")
        return 0
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--config", str(config_path),
               "--toc", str(toc_path), "--path-output", str(OUT)]
    return subprocess.run(command, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
