"""UNUSED by the package since the explicit import lists (issue #14); kept only because
``tests/test_config.py::test_reexport_rejects_a_name_exported_twice`` (the lead's) still imports it:
remove both together.

Let a subpackage offer the public names of all its modules (``flowedu.checks.check_flow_layer``).

Each chapter adds its own module to a shared subpackage (``checks``, ``distributions``, ``metrics``)
and lists its public names in ``__all__``; the package's ``__init__`` re-exports them, so chapters
never edit one shared file. Two modules exporting the same name is an error.
"""

from __future__ import annotations

import importlib
import pkgutil


def reexport(package_name: str, package_path, namespace: dict) -> list[str]:
    """Import every public module of a package and copy the names in its ``__all__`` into ``namespace``.

    Returns:
        The sorted list of re-exported names (use it as the package's ``__all__``).
    """
    exported: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        for name in getattr(module, "__all__", ()):
            if name in exported:
                raise ImportError(f"{package_name}: {name!r} is exported by both {exported[name]} and {info.name}")
            exported[name] = info.name
            namespace[name] = getattr(module, name)
    return sorted(exported)
