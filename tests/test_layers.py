"""Import rules between the project's packages, read from the source (AST) without
importing anything.

``RULES`` is the table: each row says what the modules under one prefix may
import (``allowed``: project modules, by prefix) or must not (``forbidden``: any
module, by prefix), with exemptions and the reason. Add a row to add a rule.
The planes stand alone (sip, media, turn; signaling on media); inside control_api
imports flow one way (docs/architecture.md): api -> the voice control port <-
cluster; voice -> calls -> sip/media/signaling; voice, sms, usage -> webhooks ->
store, the store importing nothing above it.
Beside the table one rule holds everywhere: outside a package (each of
control_api's subpackages counts as one), nothing imports a module the package's
``__init__`` leaves out of its ``__all__``, a private module (``_x``) or a private
name (``from sip.ua import _x``). Tests may use internals; they are not checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("sip", "media", "turn", "signaling", "control_api", "callswitch", "loadtest")
IO_MODULES = ("asyncio", "socket", "selectors", "ssl", "uvloop")
PLANES = ("sip", "media", "turn", "signaling")  # below control_api
API = "control_api.api"
STORE_LEAVES = ("control_api.sids", "control_api.sip_realm")


@dataclass(frozen=True)
class Rule:
    importers: str  # a module prefix: "sip", "control_api.voice"
    why: str
    allowed: tuple[str, ...] | None = None  # project modules it may import; None: any
    forbidden: tuple[str, ...] = ()  # modules (project or not) it must not import
    exempt: tuple[str, ...] = ()  # importer modules the rule does not apply to

    def broken_by(self, importer: str, imported: str) -> bool:
        if not _under(importer, self.importers) or importer in self.exempt:
            return False
        if any(_under(imported, prefix) for prefix in self.forbidden):
            return True
        if self.allowed is None or imported.split(".")[0] not in PROJECT:
            return False
        return not any(_under(imported, prefix) for prefix in self.allowed)


RULES = [
    Rule("sip", "the SIP stack stands alone", allowed=("sip",)),
    Rule("media", "the media plane stands alone", allowed=("media",)),
    Rule("turn", "the TURN relay stands alone", allowed=("turn",)),
    Rule("signaling", "browser calls build on media only", allowed=("signaling", "media")),
    Rule(
        "sip",
        "protocol cores are sans-I/O (DESIGN.md): only the shells touch the loop",
        forbidden=IO_MODULES,
        exempt=("sip.endpoint", "sip.transport", "sip.registrar", "sip.ws_transport"),
    ),
    Rule(
        "turn",
        "protocol cores are sans-I/O (DESIGN.md): only the shells touch the loop",
        forbidden=IO_MODULES,
        exempt=("turn.server",),
    ),
    # control_api, one way. The voice runtime, the call legs and the cluster raise
    # domain errors (voice/port.py), never the HTTP layer's ApiError (control_api.errors).
    Rule(
        "control_api.voice",
        "the voice runtime meets the HTTP layer and the cluster only through its port",
        forbidden=(API, "control_api.cluster", "control_api.errors"),
    ),
    Rule(
        "control_api.calls",
        "the call legs know nothing of the runtime that drives them",
        forbidden=(
            API,
            "control_api.voice",
            "control_api.cluster",
            "control_api.sms",
            "control_api.usage",
            "control_api.errors",
        ),
    ),
    Rule(
        "control_api.sms",
        "SMS sits beside voice, under the API",
        forbidden=(API, "control_api.voice", "control_api.cluster"),
    ),
    Rule(
        "control_api.usage",
        "usage sits under the API and the runtimes",
        forbidden=(API, "control_api.voice", "control_api.cluster"),
    ),
    Rule(
        "control_api.cluster",
        "the cluster implements the voice port; the API maps its errors",
        forbidden=(API, "control_api.errors"),
    ),
    Rule(
        "control_api.webhooks",
        "webhooks serve voice, SMS and usage, on the store",
        forbidden=(
            API,
            "control_api.voice",
            "control_api.calls",
            "control_api.sms",
            "control_api.usage",
            "control_api.cluster",
        ),
    ),
    Rule(
        "control_api.store",
        "the store is the bottom of control_api: itself and leaf modules only",
        allowed=("control_api.store", *STORE_LEAVES, *PLANES),
    ),
    *(
        Rule(leaf, "a leaf the store builds on imports nothing of the project", allowed=(leaf,))
        for leaf in STORE_LEAVES
    ),
]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, importer: str) -> list[tuple[str, list[str], int]]:
    """(module, names imported from it, line) for every import in ``source``, nested
    ones too; relative imports are resolved against ``importer``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = importer.split(".")[: -node.level]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


@cache
def public_modules(package: str) -> frozenset[str] | None:
    """The submodules ``package/__init__.py`` names in ``__all__`` (None: no list)."""
    init = ROOT / package / "__init__.py"
    if not init.exists():
        return None
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return frozenset(ast.literal_eval(node.value))
    return None


def owner(module: str) -> str:
    """The package a module belongs to: control_api.<sub> for control_api's
    subpackages (its root modules belong to control_api), else its top package."""
    parts = module.split(".")
    if parts[0] == "control_api" and len(parts) > 1 and (ROOT / "control_api" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def privacy_problem(importer: str, module: str, names: list[str]) -> str | None:
    """Why ``importer`` may not import ``names`` from ``module`` (None: it may)."""
    package = module.split(".")[0]
    if package not in PROJECT or owner(importer) == owner(module):
        return None
    parts = module.split(".")
    if any(part.startswith("_") for part in parts):
        return f"private module {module}"
    public = public_modules(package)
    if public is not None:
        if len(parts) > 1 and parts[1] not in public:
            return f"{module} is not in {package}.__all__"
        if len(parts) == 1:  # from sip import ua
            hidden = [name for name in names if name not in public]
            if hidden:
                return f"{', '.join(hidden)} not in {package}.__all__"
    private = [name for name in names if name.startswith("_")]
    if private:
        return f"private name {', '.join(private)} of {module}"
    return None


def problems(source: str, importer: str) -> list[str]:
    found = []
    for module, names, line in imports(source, importer):
        for rule in RULES:
            if rule.broken_by(importer, module):
                found.append(f"{importer}:{line} imports {module}: {rule.why}")
        problem = privacy_problem(importer, module, names)
        if problem is not None:
            found.append(f"{importer}:{line}: {problem}")
    return found


def project_files() -> list[Path]:
    return sorted(path for package in PROJECT for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PROJECT)
def test_imports_keep_the_layers_and_the_packages_private_parts(package):
    found = []
    for path in project_files():
        if path.relative_to(ROOT).parts[0] == package:
            found += problems(path.read_text(), module_name(path))
    assert found == []


@pytest.mark.parametrize("package", ["sip", "media", "turn", "signaling"])
def test_every_public_module_exists(package):
    public = public_modules(package)
    assert public is not None, f"{package}/__init__.py has no __all__"
    for name in public:
        assert (ROOT / package / f"{name}.py").exists() or (ROOT / package / name).is_dir()


# -- the checker itself catches what it should


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        ("sip.ua", "from control_api.call import Call"),
        ("sip.transaction", "import media.rtp"),
        ("media.bridge", "from sip.message import Request"),
        ("turn.stun", "def f():\n    from signaling import tokens"),
        ("signaling.server", "from sip.ua import UserAgent"),
        ("sip.dialog", "import asyncio"),
        ("turn.allocation", "from socket import socket"),
        ("control_api.call", "from sip.ua import _dtmf_relay_digit"),
        ("control_api.call", "from sip._wire import x"),
        ("control_api.call", "import media.jitter"),
        ("control_api.call", "from media import jitter"),
        ("callswitch.server", "from turn.indications import send_indication"),
        ("control_api.voice.dial", "from control_api.api.calls import call_uri"),
        ("control_api.voice.outbound", "from control_api.errors import ApiError"),
        ("control_api.calls.dialer", "from control_api.voice.port import NewCall"),
        ("control_api.cluster.node", "def f():\n    from control_api.api import create_app"),
        ("control_api.store.calls", "from control_api.voice.lifecycle import base_params"),
        ("control_api.sids", "from control_api.store import Store"),
        ("control_api.voice.dial", "from control_api.calls.dialer import _trunk_for"),
    ],
)
def test_a_forbidden_import_is_reported(importer, source):
    assert problems(source, importer)


@pytest.mark.parametrize(
    ("importer", "source"),
    [
        ("sip.ua", "from sip.transaction import ServerTransaction\nimport logging"),
        ("sip.transport", "import asyncio"),
        ("signaling.webrtc_leg", "from media.leg import Leg\nimport aiortc"),
        ("media.session", "from . import rtp\nfrom .jitter import JitterBuffer"),
        ("control_api.call", "from sip.ua import UserAgent\nfrom media import codecs"),
        ("control_api.api.streams", "from control_api.api.calls import _existing"),
        ("control_api.voice.dial", "from control_api.calls.dialer import Dialer"),
        ("control_api.api.calls", "from control_api.voice.port import NewCall"),
        ("control_api.store.calls", "from control_api.sids import new_sid"),
    ],
)
def test_an_allowed_import_passes(importer, source):
    assert problems(source, importer) == []
