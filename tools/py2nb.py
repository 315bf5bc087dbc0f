"""Authoring aid: turn a jupytext percent script into a clean notebook (no outputs, no jupytext metadata).

    .venv/bin/python tools/py2nb.py source.py notebooks/name.ipynb

The notebook is the source of truth afterwards; this only saves typing JSON by hand.
"""

import sys

import jupytext
import nbformat

source, target = sys.argv[1:3]
nb = jupytext.read(source, fmt="py:percent")
nb.metadata = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
for cell in nb.cells:
    cell.metadata.pop("lines_to_next_cell", None)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
nbformat.validate(nb)
nbformat.write(nb, target)
print(f"wrote {target}")
