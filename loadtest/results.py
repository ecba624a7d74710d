"""The one JSON shape every load scenario writes with `--json PATH`.

    {"scenario": "bridge",
     "target": {"load": 500, "unit": "bridged calls", ...the scenario's limits},
     "levels": [{"load": N, "throughput": ..., "throughput_unit": "...",
                 "latency_p50_ms": ..., "latency_p99_ms": ..., "loss_pct": ...,
                 "cpu_pct": ..., "meets": bool}, ...],
     "largest_passing": N or null,
     ...anything else the scenario adds (its own detailed figures)}

A figure a scenario cannot measure is null, never a made-up number.
`loadtest/suite.py` reads these files, checks them with :func:`problems`,
plots them and gathers them into one report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# The load generators run on 127.0.0.1 and offer far more calls per second and per
# source than the per-source limits let a stranger (docs/security.md): every
# scenario's server names them a trusted peer, as an operator names the proxy in
# front. loadtest/abuse.py measures the node with the limits in force.
TRUSTED_LOAD = ("--trusted-peer", "127.0.0.1/32")

LEVEL_NUMBERS = ("throughput", "latency_p50_ms", "latency_p99_ms", "loss_pct", "cpu_pct")


def _number(value: float | int | None, digits: int = 3) -> float | None:
    """A finite float rounded for the report, or None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def level(
    load: int | float,
    *,
    throughput: float | None,
    throughput_unit: str,
    latency_p50_ms: float | None,
    latency_p99_ms: float | None,
    loss_pct: float | None,
    cpu_pct: float | None,
    meets: bool,
    **extra: Any,
) -> dict[str, Any]:
    """One row of `levels`: what the scenario measured at one load."""
    return {
        "load": load,
        "throughput": _number(throughput),
        "throughput_unit": throughput_unit,
        "latency_p50_ms": _number(latency_p50_ms),
        "latency_p99_ms": _number(latency_p99_ms),
        "loss_pct": _number(loss_pct),
        "cpu_pct": _number(cpu_pct, 1),
        "meets": bool(meets),
        **extra,
    }


def report(
    scenario: str,
    *,
    target: dict[str, Any],
    levels: list[dict[str, Any]],
    largest_passing: int | float | None,
    **extra: Any,
) -> dict[str, Any]:
    """The whole file; `target` must name at least `load` and its `unit`."""
    return {
        "scenario": scenario,
        "target": target,
        "levels": levels,
        "largest_passing": largest_passing,
        **extra,
    }


def finite(value: Any) -> Any:
    """`value` with every NaN or infinity inside it as None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def write(path: Path, data: dict[str, Any]) -> None:
    """Write the report; NaN figures in a scenario's own detail become null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n")
    print(f"figures written to {path}", flush=True)


def problems(data: Any) -> list[str]:
    """What is wrong with a report's shape (empty when it is whole)."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    out = []
    if not isinstance(data.get("scenario"), str):
        out.append("scenario: missing or not a string")
    target = data.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("load"), int | float):
        out.append("target: missing or without a numeric load")
    elif not isinstance(target.get("unit"), str):
        out.append("target: without a unit")
    levels = data.get("levels")
    if not isinstance(levels, list):
        return [*out, "levels: missing or not a list"]
    for index, row in enumerate(levels):
        if not isinstance(row, dict):
            out.append(f"levels[{index}]: not an object")
            continue
        if not isinstance(row.get("load"), int | float) or isinstance(row.get("load"), bool):
            out.append(f"levels[{index}].load: not a number")
        for key in LEVEL_NUMBERS:
            if key not in row:
                out.append(f"levels[{index}].{key}: missing")
            elif row[key] is not None and (
                isinstance(row[key], bool) or not isinstance(row[key], int | float)
            ):
                out.append(f"levels[{index}].{key}: not a number or null")
        if not isinstance(row.get("meets"), bool):
            out.append(f"levels[{index}].meets: not a boolean")
    if "largest_passing" not in data:
        out.append("largest_passing: missing")
    elif data["largest_passing"] is not None and not isinstance(
        data["largest_passing"], int | float
    ):
        out.append("largest_passing: not a number or null")
    return out
