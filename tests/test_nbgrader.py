"""nbgrader, for real: every solution notebook is an nbgrader source notebook that grades.

For each notebook with exercises, in a fresh course folder: ``nbgrader generate_assignment`` makes the
student version; ``nbgrader autograde`` grades two submissions, the solution notebook itself ("full",
which must get full marks) and the exercise notebook a student receives, untouched ("blank", which must
get zero). The blank submission's executed copy is also read back: exactly the code exercises fail,
each once, with NotImplementedError, and nothing else fails (every other cell runs on flowedu's
reference code). Notebooks run in quick mode with FLOWEDU_SMOKE=1: grading does not depend on how
long anything trains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
STUDENTS = ("full", "blank")
CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "flowedu"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = 900
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
"""


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "FLOWEDU_MODE": "quick", "FLOWEDU_SMOKE": "1", "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (
        f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _errors(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, o.ename) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.notebooks
@pytest.mark.parametrize("exercise", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_nbgrader_generates_and_autogrades(tmp_path, exercise):
    from nbgrader.api import Gradebook

    sys.path.insert(0, str(ROOT))
    from tools import exercises

    name = exercise.stem
    course = tmp_path / "course"
    (course / "source" / name).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course), stub="\n".join(exercises.CODE_STUB)))
    solution = ROOT / "notebooks" / f"{name}.ipynb"
    shutil.copy(solution, course / "source" / name / f"{name}.ipynb")

    _nbgrader(course, "generate_assignment", name, "--force")
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    ours = nbformat.read(exercise, as_version=4)
    graded = [c.metadata["nbgrader"]["grade_id"] for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded == [c.metadata["nbgrader"]["grade_id"] for c in ours.cells
                      if c.metadata.get("nbgrader", {}).get("grade")], "nbgrader's student version and ours differ"

    for student, source in (("full", solution), ("blank", exercise)):
        (course / "submitted" / student / name).mkdir(parents=True)
        shutil.copy(source, course / "submitted" / student / name / f"{name}.ipynb")
        _nbgrader(course, "db", "student", "add", student)
    _nbgrader(course, "autograde", name, "--force")

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        full = gradebook.find_submission_notebook(name, name, "full")
        blank = gradebook.find_submission_notebook(name, name, "blank")
        assert full.max_score > 0, f"{name}: no graded check cells"
        assert full.score == full.max_score, [(g.name, g.score, g.max_score) for g in full.grades]
        assert blank.score == 0, [(g.name, g.score) for g in blank.grades]

    assert _errors(course / "autograded" / "full" / name / f"{name}.ipynb") == []
    errors = _errors(course / "autograded" / "blank" / name / f"{name}.ipynb")
    assert {e for _, e in errors} == {"NotImplementedError"}, errors
    n_code_exercises = sum(1 for c in ours.cells if c.cell_type == "code"
                           and c.metadata.get("nbgrader", {}).get("solution"))
    assert len(errors) == n_code_exercises, (
        f"{name}: {n_code_exercises} code exercises, but these cells failed: {errors} (each exercise must fail "
        "exactly once, in its blank or its check, and no other cell may fail)")


@pytest.mark.notebooks
def test_grade_reports_each_exercise(capsys):
    from flowedu import grade

    solved = grade.grade(ROOT / "notebooks" / "getting_started.ipynb")
    blank = grade.grade(ROOT / "notebooks" / "exercises" / "getting_started.ipynb")
    checks = [o for o in solved if o.kind == "check"]
    assert checks and all(o.status == "pass" for o in checks)
    assert all(o.status == "answered" for o in solved if o.kind == "answer")
    assert all(o.status == "fail" and "NotImplementedError" in o.message for o in blank if o.kind == "check")
    assert all(o.status == "blank" for o in blank if o.kind == "answer")
    text = grade.report("getting_started", blank)
    assert f"automatic score 0 / {sum(o.points for o in checks):g}" in text


def test_grade_rejects_what_is_not_a_graded_notebook(tmp_path):
    from flowedu import grade

    with pytest.raises(ValueError, match="path must be an existing .ipynb"):
        grade.grade(tmp_path / "absent.ipynb")
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), plain)
    with pytest.raises(ValueError, match="no graded cells"):
        grade.grade(plain)
