"""The store is the bottom of control_api: it imports nothing of the packages above it
(api, voice, sms, usage, cluster, webhooks, ...), only itself and leaf modules."""

from __future__ import annotations

import ast
from pathlib import Path

import control_api

CONTROL_API = Path(control_api.__file__).parent
# Modules of control_api the store may import: leaves, which import nothing of control_api.
LEAVES = ("control_api.sids", "control_api.sip_realm")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _control_api_imports(path: Path) -> set[str]:
    return {
        name for name in _imported(path) if name == "control_api" or name.startswith("control_api.")
    }


def test_the_store_imports_only_itself_and_leaf_modules_of_control_api():
    climbing = {
        f"{path.relative_to(CONTROL_API)}: {name}"
        for path in sorted((CONTROL_API / "store").rglob("*.py"))
        for name in _control_api_imports(path)
        if not (name.startswith("control_api.store") or name in LEAVES)
    }
    assert climbing == set()


def test_the_leaf_modules_import_nothing_of_control_api():
    for leaf in LEAVES:
        path = CONTROL_API / f"{leaf.removeprefix('control_api.')}.py"
        assert _control_api_imports(path) == set(), leaf
