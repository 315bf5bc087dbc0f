"""The build tools that are not the book itself: the student edition and the results page."""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import results, student_book  # noqa: E402


def _files(toc) -> list[str]:
    if isinstance(toc, dict):
        return ([toc["file"]] if "file" in toc else []) + [f for v in toc.values() for f in _files(v)]
    if isinstance(toc, list):
        return [f for item in toc for f in _files(item)]
    return []


def test_student_edition_swaps_in_every_exercise_notebook_and_hides_solutions(tmp_path):
    config_path, toc_path = student_book.write_variants(ROOT, tmp_path)
    config, toc = yaml.safe_load(config_path.read_text()), yaml.safe_load(toc_path.read_text())
    files = _files(toc)
    with_exercises = sorted(p.stem for p in (ROOT / "notebooks" / "exercises").glob("*.ipynb"))
    assert with_exercises
    for name in with_exercises:
        assert f"notebooks/exercises/{name}" in files and f"notebooks/{name}" not in files
    assert len(files) == len(_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "notebooks/exercises/*" in config["execute"]["exclude_patterns"]
    assert not any("exercises" in p for p in config["exclude_patterns"])


def test_results_page_is_generated_from_the_records(tmp_path, monkeypatch):
    records = {"vae": {"notebook": "notebooks/vae.ipynb", "mode": "full", "dataset": "fashion-mnist",
                       "seconds": 754.0, "date": "2026-11-30", "machine": "2-core CPU", "status": "all claims held",
                       "records": [{"key": "vae.test_elbo", "value": -241.234567, "unit": "nats",
                                    "note": "test ELBO", "dataset": "fashion-mnist"}]}}
    text = results.page(records)
    assert "| `test_elbo` | -241.2 | nats | test ELBO |" in text
    assert "**fashion-mnist**" in text and "13 min" in text and "all claims held" in text
    assert "## `flows_2d`" in text and "Not yet run" in text  # a notebook without records says so
    assert "gan_images" in text and "not yet run" in text
    path = tmp_path / "full-cpu.json"
    path.write_text(json.dumps(records))
    monkeypatch.setattr(results, "RESULTS", path)
    monkeypatch.setattr(results, "PAGE", tmp_path / "results.md")
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"vae": {"quick_cpu": {"seconds": 20, "how": "measured"}}}))
    monkeypatch.setattr(results, "TIMINGS", timings)
    assert results.main(["page", "--check"]) == 1
    assert results.main(["page"]) == 0 and results.main(["page", "--check"]) == 0
    table = json.loads(timings.read_text())["vae"]
    assert table["quick_cpu"] == {"seconds": 20, "how": "measured"}  # kept
    assert table["full_cpu"] == {"seconds": 754, "how": "measured on a 2-core CPU, 2026-11-30"}
