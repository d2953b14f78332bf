"""Choosing a spec for a release that was given none: meta.csv's columns and the mask file names decide."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from qa.spec import ReleaseSpec, all_builtin_specs

CASES_LOOKED_AT = 5


@dataclass(frozen=True)
class Choice:
    spec: ReleaseSpec
    reason: str


def _meta_columns(root: Path, spec: ReleaseSpec) -> list[str]:
    try:
        with open(root / spec.meta.file, "rb") as fh:
            first = fh.readline(64 << 10)
    except OSError:
        return []
    text = first.decode(spec.meta.encoding, errors="replace").lstrip("\ufeff").strip()
    return [c.strip() for c in text.split(spec.meta.separator)] if text else []


def _mask_names(root: Path, spec: ReleaseSpec) -> set[str]:
    pattern = re.compile(spec.case_pattern)
    names: set[str] = set()
    try:
        cases = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and pattern.search(e.name))
    except OSError:
        return names
    for case in cases[:CASES_LOOKED_AT]:
        try:
            names |= {n.removesuffix(spec.mask_suffix) for n in os.listdir(root / case / spec.mask_dir)
                      if n.endswith(spec.mask_suffix)}
        except OSError:
            continue
    return names


def _score(root: Path, spec: ReleaseSpec) -> tuple[float, str]:
    columns = _meta_columns(root, spec)
    masks = _mask_names(root, spec)
    classes = set(spec.classes)
    column_match = 1.0 if set(columns) == set(spec.meta.columns) else 0.0
    mask_match = len(masks & classes) / len(masks | classes) if masks else 0.0
    why = (f"{'the' if column_match else 'not the'} {len(spec.meta.columns)} meta.csv columns; "
           f"{len(masks & classes)} of {len(masks)} mask names seen are among its {len(classes)} classes")
    return mask_match * 2 + column_match, why


def detect_spec(root: Path, specs: list[ReleaseSpec] | None = None) -> Choice:
    """The built-in spec that fits the release best, and a sentence saying why."""
    scored = sorted(((*_score(root, spec), spec) for spec in specs or all_builtin_specs()),
                    key=lambda item: (-item[0], item[2].id))
    score, why, spec = scored[0]
    if score == 0:
        return Choice(spec, f"detected nothing (no meta.csv columns or mask names matched any spec); using {spec.id}")
    return Choice(spec, f"detected {spec.id}: {why}")
