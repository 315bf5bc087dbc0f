"""Self-checks that end the book's exercises.

Each chapter adds its checks in a module of this package named after the chapter
(``flowedu/checks/flows.py`` for ``check_flow_layer``) and lists them in its ``__all__``; they are
re-exported here, so that a notebook writes ``flowedu.checks.check_flow_layer(MyLayer(...))``.
A check raises ``AssertionError`` with a message that says what differs, and prints one line when
everything agrees. ``check_close`` and ``check_function`` (in ``core``) are the building blocks. Every check wears
``core.leaves_rng_alone``: the caller's global torch (CPU and CUDA), NumPy and Python random states are
the same after a check as before it, so a notebook draws the same numbers whether or not a check ran
(``tests/test_checks_rng.py`` asserts this for every check).
"""

from flowedu._reexport import reexport

__all__ = reexport(__name__, __path__, globals())
