"""Scorecard rows: each chapter records the paper's numbers beside its measured ones.

    scorecard.record("F1.gap_N10", chapter="02", measure="train - test PSNR at N=10 (dB)",
                     paper=None, target=">= 5", measured=11.0, profile="book")

A row passes when `measured` satisfies `target` (">= x", "<= x", "within x of y", or None for
rows that are only reported). Rows go to $DIFFGEN_SCORECARD_DIR/<chapter>.json (set by the
runner); outside the runner they are only returned, so interactive runs leave no files.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

TARGET = re.compile(r"^\s*(>=|<=)\s*([-+0-9.eE]+)\s*$|^\s*within\s+([0-9.eE]+)\s+of\s+"
                    r"([-+0-9.eE]+)\s*$")


def passes(target: str | None, measured: float) -> bool | None:
    """True or False for a target string; None when there is no target."""
    if target is None:
        return None
    if measured is None or not math.isfinite(measured):
        return False
    m = TARGET.match(target)
    if not m:
        raise ValueError(f"target {target!r} is not '>= x', '<= x' or 'within x of y'")
    if m.group(1):
        bound = float(m.group(2))
        return measured >= bound if m.group(1) == ">=" else measured <= bound
    return abs(measured - float(m.group(4))) <= float(m.group(3))


def record(id: str, chapter: str, measure: str, measured: float, profile: str,
           target: str | None = None, paper=None, checkpoints: list[str] | None = None) -> dict:
    """Write (or replace) one row and return it."""
    row = {"id": id, "chapter": chapter, "measure": measure, "paper": paper, "target": target,
           "measured": None if measured is None else float(measured), "profile": profile,
           "pass": passes(target, measured), "checkpoints": checkpoints or []}
    folder = os.environ.get("DIFFGEN_SCORECARD_DIR")
    if folder:
        path = Path(folder) / f"{chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = json.loads(path.read_text()) if path.exists() else []
        rows = [r for r in rows if r["id"] != id] + [row]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        os.replace(tmp, path)
    return row
