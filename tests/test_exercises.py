"""The exercise generator: markers, stubs, metadata, leaks, and the repository's notebooks being up to date."""

import nbformat
import pytest

from flowedu import exercises, stamp

RELEASE = stamp.Release("https://github.com/owner/repo", "v9.9.9")


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title")] + [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in cells
    ]
    return nb


SOLVED = notebook(
    ("code", "def f(x):\n    y = x + 1\n    ### BEGIN SOLUTION\n    secret_value = y * 42\n    return secret_value\n"
             "    ### END SOLUTION\n\nf(1)"),
    ("md", "Explain.\n### BEGIN SOLUTION\nBecause the hidden reason holds.\n### END SOLUTION"),
    ("code", "print('untouched')"),
)


def test_code_regions_become_stubs_at_their_indentation():
    exercise = exercises.make_exercise(SOLVED, "nb.ipynb", RELEASE)
    code = exercise.cells[3].source
    assert code == (
        "def f(x):\n    y = x + 1\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise: write this part, then run the check below.")\n\nf(1)'
    )
    assert exercise.cells[4].source == "Explain.\nYOUR ANSWER HERE"
    assert exercise.cells[5].source == "print('untouched')"


def test_exercise_has_note_badge_and_install_cell():
    exercise = exercises.make_exercise(SOLVED, "nb.ipynb", RELEASE)
    assert RELEASE.colab_url("notebooks/exercises/nb.ipynb") in exercise.cells[0].source
    assert "Exercise version" in exercise.cells[1].source
    assert exercise.cells[2].metadata["flowedu"] == "install"
    assert "git+https://github.com/owner/repo@v9.9.9" in exercise.cells[2].source


def test_the_source_is_not_modified():
    before = nbformat.writes(SOLVED)
    exercises.make_exercise(SOLVED, "nb.ipynb", RELEASE)
    assert nbformat.writes(SOLVED) == before


def test_whole_markdown_answer_cell_with_nbgrader_metadata():
    nb = notebook(("md", "The answer is 42 because of reasons."))
    nb.cells[1].metadata["nbgrader"] = {"solution": True}
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert exercise.cells[-1].source == "YOUR ANSWER HERE"
    assert exercises.find_leaks(nb, exercise) == []


def test_no_solution_line_leaks():
    exercise = exercises.make_exercise(SOLVED, "nb.ipynb", RELEASE)
    assert exercises.find_leaks(SOLVED, exercise) == []
    exercise.cells[5].source += "\nsecret_value = y * 42"  # a hand edit that reveals the answer
    leaks = exercises.find_leaks(SOLVED, exercise)
    assert len(leaks) == 1 and "secret_value = y * 42" in leaks[0]


def test_lines_used_outside_regions_are_not_leaks():
    nb = notebook(("code", "a = 1\n### BEGIN SOLUTION\nprint(a)\n### END SOLUTION"), ("code", "print(a)"))
    exercise = exercises.make_exercise(nb, "nb.ipynb", RELEASE)
    assert exercises.find_leaks(nb, exercise) == []


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


def test_solution_cells_get_nbgrader_metadata():
    nb = notebook(("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), ("code", "y = 2"))
    assert exercises.mark_solution_cells(nb, "nb.ipynb")
    assert nb.cells[1].metadata["nbgrader"] == {
        "solution": True, "grade": False, "locked": False, "grade_id": "nb-solution-1", "schema_version": 3,
    }
    assert "nbgrader" not in nb.cells[2].metadata
    assert not exercises.mark_solution_cells(nb, "nb.ipynb")


def make_repo(tmp_path, root):
    (tmp_path / "notebooks" / "exercises").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text((root / "_config.yml").read_text())
    nb = notebook(("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    nbformat.write(nb, tmp_path / "notebooks" / "a.ipynb")
    return tmp_path


def test_check_fails_until_written_and_after_a_hand_edit(tmp_path, root):
    repo = make_repo(tmp_path, root)
    assert any("lack nbgrader metadata" in m for m in exercises.check(repo))
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
