"""Choosing a spec for a release that was given none: meta.csv's columns and the mask file names decide, or
nothing fits clearly and the user must choose.

Detection reads through the release's source, so the scan's rules hold here too: no link out of the release is
followed, no special file is opened, and at most HEADER_BYTES of meta.csv are read."""

from __future__ import annotations

from dataclasses import dataclass

from qa.rules.spec import ReleaseSpec, all_builtin_specs, case_folders
from qa.source.base import Entry, ReleaseSource, SourceError

CASES_LOOKED_AT = 5
HEADER_BYTES = 64 << 10
FIT_SHARE = 0.9  # of the mask names seen, the share that must be the spec's classes
FIT_JACCARD = 0.5  # a spec's classes must be in good part among the mask names seen
# One mask name of about 117 moves a score by about 0.017: v2 and v3 differ in two names (vertebrae_S1, _L6).
MARGIN = 0.01


class NoSpecFits(ValueError):
    """No built-in spec fits the release clearly; the message says why in one line."""


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


@dataclass(frozen=True)
class Score:
    """How well one spec fits: 2 x the Jaccard index of the mask names seen and its classes, + 1 when meta.csv has
    its columns (0 to 3); whether it fits at all; and why, in words."""

    spec: ReleaseSpec
    value: float
    fits: bool
    why: str


def _score(source: ReleaseSource, spec: ReleaseSpec, root_entries: list[Entry]) -> Score:
    columns = _meta_columns(source, spec)
    masks = _mask_names(source, spec, root_entries)
    classes = set(spec.classes)
    common = len(masks & classes)
    column_match = set(columns) == set(spec.meta.columns)
    jaccard = common / len(masks | classes) if masks else 0.0
    fits = common >= FIT_SHARE * len(masks) and jaccard >= FIT_JACCARD if masks else column_match
    why = (f"{'the' if column_match else 'not the'} {len(spec.meta.columns)} meta.csv columns; "
           f"{common} of {len(masks)} mask names seen are among its {len(classes)} classes")
    return Score(spec, jaccard * 2 + column_match, fits, why)


def _not_a_release(root_entries: list[Entry], specs: list[ReleaseSpec], where: str) -> str | None:
    """Why the root is plainly no release (nothing of one, or one case folder), or None."""
    kinds = {e.path: e.kind for e in root_entries}
    if any(kinds.get(spec.image) == "file" and kinds.get(spec.mask_dir) == "dir" for spec in specs):
        return (f"{where} looks like one case folder, not a release: give its parent folder (the release, with "
                "meta.csv and the case folders)")
    if not any(kinds.get(spec.meta.file) or case_folders(root_entries, spec.case_pattern) for spec in specs):
        return f"no release here: no meta.csv and no case folders (sXXXX/) in {where}"
    return None


def detect_spec(source: ReleaseSource, specs: list[ReleaseSpec] | None = None, where: str = "the release",
                hint: str = "name a spec") -> Choice:
    """The built-in spec that fits the release clearly, and a sentence saying why; NoSpecFits when none does.

    Clearly: the best fits (of the mask names seen, at least FIT_SHARE are its classes, and their Jaccard index
    with its classes is at least FIT_JACCARD; with no mask seen, meta.csv has its columns), and its score is at
    least MARGIN ahead of the next one's."""
    specs = specs or all_builtin_specs()
    root_entries = source.entries("")
    problem = _not_a_release(root_entries, specs, where)
    if problem is not None:
        raise NoSpecFits(problem)
    scored = sorted((_score(source, spec, root_entries) for spec in specs), key=lambda s: (-s.value, s.spec.id))
    best = scored[0]
    if best.fits and (len(scored) == 1 or best.value - scored[1].value >= MARGIN):
        return Choice(best.spec, f"detected {best.spec.id}: {best.why}")
    candidates = "; ".join(f"{s.spec.id} {s.value:.2f} of 3 ({s.why})" for s in scored[:2])
    raise NoSpecFits(f"no built-in spec fits {where} clearly, best: {candidates}; {hint}")
