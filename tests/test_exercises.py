"""The exercise generator (tools/exercises.py): nbgrader form, stubs, checks, leaks, lost questions, and the
repository's notebooks being up to date."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import exercises, stamp  # noqa: E402

RELEASE = stamp.Release("https://github.com/owner/repo", "v9.9.9")
STUB = "\n".join(exercises.CODE_STUB)


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title")] + [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in cells
    ]
    return nb


def solved():
    nb = notebook(
        ("md", "Write `f`, which adds one and multiplies by 42."),
        ("code", "def f(x):\n    y = x + 1\n    ### BEGIN SOLUTION\n    secret_value = y * 42\n"
                 "    return secret_value\n    ### END SOLUTION\n\n\ncheck(f)"),
        ("md", "**Question.** Why 42?"),
        ("md", "**Answer.** Because the hidden reason holds."),
        ("code", "print('untouched')"),
    )
    nb.cells[4].metadata["nbgrader"] = {"solution": True}
    exercises.normalize(nb, "nb.ipynb")
    return nb


def test_normalize_splits_the_check_into_a_locked_graded_cell():
    nb = solved()
    answer, check = nb.cells[2], nb.cells[3]
    assert answer.source.endswith("### END SOLUTION") and "check(f)" not in answer.source
    assert check.source == "check(f)"
    assert answer.metadata["nbgrader"] == {"solution": True, "grade": False, "locked": False,
                                           "grade_id": "nb-solution-1", "schema_version": 3}
    assert check.metadata["nbgrader"] == {"solution": False, "grade": True, "locked": True, "points": 1,
                                          "grade_id": "nb-check-1", "schema_version": 3}
    assert "hide-input" in answer.metadata["tags"]
    assert not exercises.normalize(nb, "nb.ipynb"), "normalize is idempotent"


def test_prose_answers_are_folded_and_worth_zero_points_by_default():
    answer = solved().cells[5]
    assert answer.source.startswith("<details>") and "Because the hidden reason holds." in answer.source
    assert answer.metadata["nbgrader"]["points"] == 0 and answer.metadata["nbgrader"]["grade"]


def test_a_code_exercise_without_a_check_is_refused():
    nb = notebook(("md", "Do it."), ("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    with pytest.raises(exercises.MarkerError, match="must be followed by a code cell that checks it"):
        exercises.normalize(nb, "nb.ipynb")


def test_code_regions_become_stubs_at_their_indentation_and_the_question_stays():
    exercise = exercises.make_exercise(solved(), "nb.ipynb", RELEASE)
    sources = [c.source for c in exercise.cells]
    assert "def f(x):\n    y = x + 1\n    # YOUR CODE HERE\n    raise NotImplementedError(" in "\n".join(sources)
    assert "**Question.** Why 42?" in sources and exercises.TEXT_STUB in sources
    assert "check(f)" in sources and "print('untouched')" in sources
    solution_cell = next(c for c in exercise.cells if exercises.CODE_STUB[0] in c.source)
    assert "hide-input" not in solution_cell.metadata.get("tags", []), "a student must see the blank"
    assert exercises.questions_kept(exercise) == []


def test_hidden_tests_are_removed_from_the_exercise():
    nb = solved()
    nb.cells[3].source += "\n### BEGIN HIDDEN TESTS\nassert f(0) == 42\n### END HIDDEN TESTS"
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert not any("f(0) == 42" in c.source for c in exercise.cells)
    assert exercises.find_leaks(nb, exercise) == []


def test_exercise_has_note_badge_and_install_cell():
    exercise = exercises.make_exercise(solved(), "nb.ipynb", RELEASE)
    assert RELEASE.colab_url("notebooks/exercises/nb.ipynb") in exercise.cells[0].source
    assert "Exercise version" in exercise.cells[1].source
    installs = [c for c in exercise.cells if c.metadata.get("flowedu") == "install"]
    assert len(installs) == 1 and "git+https://github.com/owner/repo@v9.9.9" in installs[0].source


def test_the_source_is_not_modified():
    nb = solved()
    before = nbformat.writes(nb)
    exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert nbformat.writes(nb) == before


def test_no_solution_line_leaks():
    nb = solved()
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert exercises.find_leaks(nb, exercise) == []
    exercise.cells[-1].source += "\nsecret_value = y * 42"  # a hand edit that reveals the answer
    leaks = exercises.find_leaks(nb, exercise)
    assert len(leaks) == 1 and "secret_value = y * 42" in leaks[0]


def test_lines_used_outside_regions_are_not_leaks():
    nb = notebook(("md", "Print a."), ("code", "a = 1\n### BEGIN SOLUTION\nprint(a)\n### END SOLUTION"),
                  ("code", "print(a)"))
    exercises.normalize(nb, "nb.ipynb")
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert exercises.find_leaks(nb, exercise) == []


def test_a_blank_answer_without_its_question_is_reported():
    nb = notebook(("md", "Some prose."), ("md", "**Answer.** 42."), ("code", "1"))
    nb.cells[2].metadata["nbgrader"] = {"solution": True}
    exercises.normalize(nb, "nb.ipynb")
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert any("no question before it" in p for p in exercises.questions_kept(exercise))


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\n### END SOLUTION", r"nb.ipynb, cell 1, line 3: nested"),
        ("x = 1\n### END SOLUTION", r"nb.ipynb, cell 1, line 2: .* without a matching"),
        ("### BEGIN SOLUTION\nx = 1", r"nb.ipynb, cell 1: .* never closed"),
    ],
)
def test_bad_markers_name_the_notebook_and_cell(source, match):
    with pytest.raises(exercises.MarkerError, match=match):
        exercises.make_exercise(notebook(("code", source)), "nb.ipynb", RELEASE)


def make_repo(tmp_path, root):
    (tmp_path / "notebooks" / "exercises").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text((root / "_config.yml").read_text())
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    nb = notebook(("md", "Set x."), ("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nassert x == 1"))
    nbformat.write(nb, tmp_path / "notebooks" / "a.ipynb")
    return tmp_path


def test_check_fails_until_written_and_after_a_hand_edit(tmp_path, root):
    repo = make_repo(tmp_path, root)
    assert any("not in nbgrader form" in m for m in exercises.check(repo))
    assert any("missing" in m for m in exercises.check(repo))
    exercises.write(repo)
    assert exercises.check(repo) == []
    path = repo / "notebooks" / "exercises" / "a.ipynb"
    path.write_text(path.read_text().replace("YOUR CODE HERE", "YOUR CODE HERE, edited"))
    assert any("out of date" in m for m in exercises.check(repo))
    assert exercises.main(["--check", "--root", str(repo)]) == 1


def test_stale_exercise_without_source_is_reported(tmp_path, root):
    repo = make_repo(tmp_path, root)
    exercises.write(repo)
    (repo / "notebooks" / "a.ipynb").unlink()
    assert any("has no solution notebook" in m for m in exercises.check(repo))


def test_broken_markers_make_the_command_fail(tmp_path, root, capsys):
    repo = make_repo(tmp_path, root)
    nbformat.write(notebook(("code", "### BEGIN SOLUTION\nx = 1")), repo / "notebooks" / "a.ipynb")
    assert exercises.main(["--root", str(repo)]) == 1
    assert "a.ipynb, cell 1" in capsys.readouterr().err


def test_repository_exercises_are_up_to_date(root):
    assert exercises.check(root) == []
    assert list((root / "notebooks" / "exercises").glob("*.ipynb")), "no exercise notebooks generated"
