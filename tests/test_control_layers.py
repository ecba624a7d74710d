"""Imports inside control_api flow one way (docs/architecture.md), checked on the AST:

- nothing in voice/, calls/, sms/, usage/ or cluster/ imports the HTTP layer
  (control_api.api): they meet it through the voice control port (voice/port.py);
  voice/, calls/ and cluster/ raise domain errors, not its ApiError (control_api.errors);
- calls/ (the call legs) imports nothing of the voice runtime, the API, the cluster,
  sms or usage;
- store/ imports nothing of control_api above it: only itself and modules that
  import nothing of control_api;
- no package imports another package's private module or name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTROL = ROOT / "control_api"
PROJECT_TOPS = ("control_api", "callswitch", "sip", "media", "turn", "signaling")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names imported from it, line) for every import in the file,
    wherever it is (also inside functions and TYPE_CHECKING blocks)."""
    found = []
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def sources(package: str) -> list[Path]:
    return sorted((CONTROL / package).rglob("*.py"))


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources(package)
        for module, _, line in imports(path)
        if any(within(module, banned) for banned in forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The voice runtime, the call legs and the cluster raise domain errors
        # (voice/port.py), never the HTTP layer's ApiError (control_api.errors).
        ("voice", ("control_api.api", "control_api.cluster", "control_api.errors")),
        ("calls", ("control_api.api", "control_api.voice", "control_api.cluster",
                   "control_api.sms", "control_api.usage", "control_api.errors")),
        ("sms", ("control_api.api", "control_api.voice", "control_api.cluster")),
        ("usage", ("control_api.api", "control_api.voice", "control_api.cluster")),
        ("cluster", ("control_api.api", "control_api.errors")),
    ],
)  # fmt: skip
def test_no_import_climbs_a_layer(package, forbidden):
    assert violations(package, forbidden) == []


def test_the_store_imports_nothing_above_it():
    def control_imports(path: Path) -> list[str]:
        return [m for m, _, _ in imports(path) if within(m, "control_api")]

    leaves = {
        module_name(path)
        for path in CONTROL.glob("*.py")
        if path.name != "__init__.py" and not control_imports(path)
    }
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources("store")
        for module in control_imports(path)
        if not within(module, "control_api.store") and module not in leaves
    ]
    assert wrong == []


def owner(module: str) -> str:
    """The package a module belongs to: control_api.<sub> for control_api's
    subpackages (its root modules count as control_api), else its top package."""
    parts = module.split(".")
    if parts[0] == "control_api" and len(parts) > 1 and (CONTROL / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def test_no_package_imports_anothers_private_module_or_name():
    subpackages = {f"control_api.{p.name}" for p in CONTROL.iterdir() if p.is_dir()}
    project = {*PROJECT_TOPS, *subpackages}
    wrong = []
    for top in ("control_api", "callswitch"):
        for path in sorted((ROOT / top).rglob("*.py")):
            mine = owner(module_name(path))
            for module, names, line in imports(path):
                if owner(module) not in project or owner(module) == mine:
                    continue
                private = [p for p in module.split(".") if p.startswith("_") and p != "__init__"]
                private += [n for n in names if n.startswith("_")]
                if private:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} {module} {private}")
    assert wrong == []


def test_the_rules_see_a_climbing_import(tmp_path, monkeypatch):
    """The checks read what they should: a climbing import planted in a copy is caught."""
    fake = tmp_path / "control_api" / "voice"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from control_api.api.calls import call_uri\n")
    import sys

    here = sys.modules[__name__]
    monkeypatch.setattr(here, "ROOT", tmp_path)
    monkeypatch.setattr(here, "CONTROL", tmp_path / "control_api")
    assert violations("voice", ("control_api.api",)) == [
        "control_api/voice/bad.py:1 imports control_api.api.calls"
    ]
