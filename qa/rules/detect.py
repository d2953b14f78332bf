"""Choosing a spec for a release that was given none: meta.csv's columns and the mask file names decide.

Detection reads through the release's source, so the scan's rules hold here too: no link out of the release is
followed, no special file is opened, and at most HEADER_BYTES of meta.csv are read."""

from __future__ import annotations

from dataclasses import dataclass

from qa.rules.spec import ReleaseSpec, all_builtin_specs, case_folders
from qa.source.base import Entry, ReleaseSource, SourceError

CASES_LOOKED_AT = 5
HEADER_BYTES = 64 << 10


@dataclass(frozen=True)
class Choice:
    spec: ReleaseSpec
    reason: str


def _meta_columns(source: ReleaseSource, spec: ReleaseSpec) -> list[str]:
    try:
        with source.open(spec.meta.file) as reader:
            head = reader.read_at(0, HEADER_BYTES)
    except SourceError:
        return []
    first = head.split(b"\n", 1)[0]
    text = first.decode(spec.meta.encoding, errors="replace").lstrip("\ufeff").strip()
    return [c.strip() for c in text.split(spec.meta.separator)] if text else []


def _mask_names(source: ReleaseSource, spec: ReleaseSpec, root_entries: list[Entry]) -> set[str]:
    names: set[str] = set()
    for case in case_folders(root_entries, spec.case_pattern)[:CASES_LOOKED_AT]:
        names |= {e.path.rsplit("/", 1)[-1].removesuffix(spec.mask_suffix)
                  for e in source.entries(f"{case}/{spec.mask_dir}")
                  if e.kind == "file" and e.path.endswith(spec.mask_suffix)}
    return names


def _score(source: ReleaseSource, spec: ReleaseSpec, root_entries: list[Entry]) -> tuple[float, str]:
    columns = _meta_columns(source, spec)
    masks = _mask_names(source, spec, root_entries)
    classes = set(spec.classes)
    column_match = 1.0 if set(columns) == set(spec.meta.columns) else 0.0
    mask_match = len(masks & classes) / len(masks | classes) if masks else 0.0
    why = (f"{'the' if column_match else 'not the'} {len(spec.meta.columns)} meta.csv columns; "
           f"{len(masks & classes)} of {len(masks)} mask names seen are among its {len(classes)} classes")
    return mask_match * 2 + column_match, why


def detect_spec(source: ReleaseSource, specs: list[ReleaseSpec] | None = None) -> Choice:
    """The built-in spec that fits the release best, and a sentence saying why."""
    root_entries = source.entries("")
    scored = sorted(((*_score(source, spec, root_entries), spec) for spec in specs or all_builtin_specs()),
                    key=lambda item: (-item[0], item[2].id))
    score, why, spec = scored[0]
    if score == 0:
        return Choice(spec, f"detected nothing (no meta.csv columns or mask names matched any spec); using {spec.id}")
    return Choice(spec, f"detected {spec.id}: {why}")
