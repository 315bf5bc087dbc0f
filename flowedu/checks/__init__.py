"""Self-checks that end the book's exercises.

Each chapter adds its checks in a module of this package named after the chapter
(``flowedu/checks/flows.py`` for ``check_flow_layer``) and re-exports them here, so that a notebook
writes ``flowedu.checks.check_flow_layer(MyLayer(...))``. A check raises ``AssertionError`` with a
message that says what differs and prints one line when everything agrees.
"""

from flowedu.checks.core import check_close, check_function
from flowedu.checks.getting_started import check_nll_from_logits

__all__ = ["check_close", "check_function", "check_nll_from_logits"]
