"""Checks of meta.csv: presence, parsing, columns, cell rules, duplicate ids and split counts."""

from __future__ import annotations

from collections import Counter

from qa.checks import finding
from qa.facts import MetaFacts
from qa.meta import MetaTable, MetaUnreadable, read_table, validate
from qa.report import Finding
from qa.spec import ReleaseSpec


def check_meta(meta: MetaFacts, spec: ReleaseSpec, subset: bool) -> tuple[MetaTable | None, list[Finding]]:
    """The parsed table (None when it cannot be had) and every finding about it."""
    if not meta.present:
        return None, [finding(spec, "META_MISSING", None, meta.path, f"no {meta.path} at the release root")]
    if meta.error is not None:
        return None, [finding(spec, "META_UNREADABLE", None, meta.path, f"{meta.path}: {meta.error}", reason=meta.error)]
    try:
        table = read_table(meta.raw, spec.meta)
    except MetaUnreadable as exc:
        return None, [finding(spec, "META_UNREADABLE", None, meta.path, f"{meta.path} {exc}", reason=str(exc))]
    found = check_columns(table, spec, meta.path)
    found += check_cells(table, spec, meta.path)
    found += check_duplicate_ids(table, spec, meta.path)
    if not subset:
        found += check_split_counts(table, spec, meta.path)
    return table, found


def check_columns(table: MetaTable, spec: ReleaseSpec, path: str) -> list[Finding]:
    present = list(table.frame.columns)
    missing = [c for c in spec.meta.columns if c not in present]
    unknown = [c for c in present if c not in spec.meta.columns]
    found = []
    if missing:
        found.append(finding(spec, "META_COLUMNS", None, path, f"{path} lacks required column(s): {', '.join(missing)}",
                             variant="missing", missing=missing, present=present))
    if unknown:
        found.append(finding(spec, "META_COLUMNS", None, path, f"{path} has column(s) the spec does not know: {', '.join(unknown)}",
                             variant="unknown", unknown=unknown, present=present))
    return found


def _case_of(table: MetaTable, spec: ReleaseSpec, line: int | None) -> str | None:
    if line is None or spec.meta.id_column not in table.frame.columns:
        return None
    return table.frame.at[line, spec.meta.id_column]


def check_cells(table: MetaTable, spec: ReleaseSpec, path: str) -> list[Finding]:
    found = [
        finding(spec, "META_NORMALIZED", _case_of(table, spec, n.line), path,
                f"line {n.line}, {n.column}: {n.raw!r} read as {n.value!r}",
                row=n.line, column=n.column, value=n.raw, normalized=n.value)
        for n in table.normalized
    ]
    for failure in validate(table, spec.meta):
        where = f"line {failure.line}, " if failure.line is not None else ""
        found.append(finding(spec, "META_VALUE", _case_of(table, spec, failure.line), path,
                             f"{where}{failure.column}: {failure.value!r} breaks rule '{failure.rule}'",
                             row=failure.line, column=failure.column, value=failure.value, rule=failure.rule))
    return found


def check_duplicate_ids(table: MetaTable, spec: ReleaseSpec, path: str) -> list[Finding]:
    if spec.meta.id_column not in table.frame.columns:
        return []
    ids = table.frame[spec.meta.id_column].dropna()
    lines_of: dict[str, list[int]] = {}
    for line, case in ids.items():
        lines_of.setdefault(case, []).append(int(line))
    return [
        finding(spec, "META_DUPLICATE_ID", case, path, f"{case} is listed {len(lines)} times (lines {', '.join(map(str, lines))})",
                id=case, lines=lines)
        for case, lines in lines_of.items()
        if len(lines) > 1
    ]


def check_split_counts(table: MetaTable, spec: ReleaseSpec, path: str) -> list[Finding]:
    found = []
    rows = len(table.frame)
    if spec.expected_cases is not None and rows != spec.expected_cases:
        found.append(finding(spec, "META_SPLIT_COUNTS", None, path,
                             f"{path} lists {rows} cases, the release has {spec.expected_cases}",
                             variant="total", measured=rows, expected=spec.expected_cases))
    column = spec.meta.split_column
    if spec.splits is None or column is None or column not in table.frame.columns:
        return found
    counts = Counter(table.frame[column].dropna())
    measured = {split: counts.get(split, 0) for split in sorted(set(spec.splits) | set(counts))}
    if measured != {split: spec.splits.get(split, 0) for split in measured}:
        text = ", ".join(f"{s} {measured[s]} (expected {spec.splits.get(s, 0)})" for s in measured)
        found.append(finding(spec, "META_SPLIT_COUNTS", None, path, f"split sizes differ: {text}",
                             variant="splits", measured=measured, expected=dict(spec.splits)))
    return found
