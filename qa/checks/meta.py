"""Checks of meta.csv: presence, parsing, columns, cell rules, duplicate ids and split counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from qa.checks.base import Context, check, finding
from qa.checks.table import MetaTable, MetaUnreadable, read_table, validate
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import MetaFacts


@dataclass(frozen=True)
class MetaParse:
    """meta.csv as a table, or the finding that says why there is none."""

    table: MetaTable | None
    problem: Finding | None = None


def parse_meta(meta: MetaFacts, spec: ReleaseSpec) -> MetaParse:
    if not meta.present:
        return MetaParse(None, finding(spec, "META_MISSING", None, meta.path, f"no {meta.path} at the release root"))
    if meta.error is not None:
        return MetaParse(None, finding(spec, "META_UNREADABLE", None, meta.path, f"{meta.path}: {meta.error.reason}",
                                       subcode=meta.error.kind, reason=meta.error.reason))
    try:
        return MetaParse(read_table(meta.raw, spec.meta))
    except MetaUnreadable as exc:
        return MetaParse(None, finding(spec, "META_UNREADABLE", None, meta.path, f"{meta.path} {exc}",
                                       subcode=exc.subcode, reason=str(exc)))


@check("meta.readable", ("META_MISSING", "META_UNREADABLE"), scope="release")
def check_readable(ctx: Context) -> list[Finding]:
    """Without a readable meta.csv no case has a split or metadata: the other meta.csv checks are skipped."""
    return [] if ctx.meta.problem is None else [ctx.meta.problem]


@check("meta.columns", ("META_COLUMNS",), scope="release")
def check_columns(ctx: Context) -> list[Finding]:
    table, spec, path = ctx.meta.table, ctx.spec, ctx.facts.meta.path
    if table is None:
        return []
    present = list(table.frame.columns)
    missing = [c for c in spec.meta.columns if c not in present]
    unknown = [c for c in present if c not in spec.meta.columns]
    found = []
    if missing:
        found.append(finding(spec, "META_COLUMNS", None, path, f"{path} lacks required column(s): {', '.join(missing)}",
                             subcode="missing", missing=missing, present=present))
    if unknown:
        found.append(finding(spec, "META_COLUMNS", None, path,
                             f"{path} has column(s) the spec does not know: {', '.join(unknown)}",
                             subcode="unknown", unknown=unknown, present=present))
    return found


def _case_of(table: MetaTable, spec: ReleaseSpec, line: int | None) -> str | None:
    if line is None or spec.meta.id_column not in table.frame.columns:
        return None
    return table.frame.at[line, spec.meta.id_column]


@check("meta.cells", ("META_VALUE", "META_NORMALIZED"), scope="release")
def check_cells(ctx: Context) -> list[Finding]:
    table, spec, path = ctx.meta.table, ctx.spec, ctx.facts.meta.path
    if table is None:
        return []
    found = [
        finding(spec, "META_NORMALIZED", _case_of(table, spec, n.line), path,
                f"line {n.line}, {n.column}: {n.raw!r} read as {n.value!r}", key=n.column,
                row=n.line, column=n.column, value=n.raw, normalized=n.value)
        for n in table.normalized
    ]
    for failure in validate(table, spec.meta):
        where = f"line {failure.line}, " if failure.line is not None else ""
        found.append(finding(spec, "META_VALUE", _case_of(table, spec, failure.line), path,
                             f"{where}{failure.column}: {failure.value!r} breaks rule '{failure.rule}'",
                             subcode=failure.subcode, key=failure.column,
                             row=failure.line, column=failure.column, value=failure.value, rule=failure.rule))
    return found


@check("meta.duplicate_ids", ("META_DUPLICATE_ID",), scope="release")
def check_duplicate_ids(ctx: Context) -> list[Finding]:
    table, spec, path = ctx.meta.table, ctx.spec, ctx.facts.meta.path
    if table is None or spec.meta.id_column not in table.frame.columns:
        return []
    ids = table.frame[spec.meta.id_column].dropna()
    lines_of: dict[str, list[int]] = {}
    for line, case in ids.items():
        lines_of.setdefault(case, []).append(int(line))
    return [
        finding(spec, "META_DUPLICATE_ID", case, path,
                f"{case} is listed {len(lines)} times (lines {', '.join(map(str, lines))})", id=case, lines=lines)
        for case, lines in lines_of.items()
        if len(lines) > 1
    ]


@check("meta.split_counts", ("META_SPLIT_COUNTS",), scope="release")
def check_split_counts(ctx: Context) -> list[Finding]:
    """Skipped for a subset: a partial copy is not expected to have the release's split sizes."""
    table, spec, path = ctx.meta.table, ctx.spec, ctx.facts.meta.path
    if table is None or ctx.subset:
        return []
    found = []
    rows = len(table.frame)
    if spec.expected_cases is not None and rows != spec.expected_cases:
        found.append(finding(spec, "META_SPLIT_COUNTS", None, path,
                             f"{path} lists {rows} cases, the release has {spec.expected_cases}",
                             subcode="total", measured=rows, expected=spec.expected_cases))
    column = spec.meta.split_column
    if spec.splits is None or column is None or column not in table.frame.columns:
        return found
    counts = Counter(table.frame[column].dropna())
    measured = {split: counts.get(split, 0) for split in sorted(set(spec.splits) | set(counts))}
    if measured != {split: spec.splits.get(split, 0) for split in measured}:
        text = ", ".join(f"{s} {measured[s]} (expected {spec.splits.get(s, 0)})" for s in measured)
        found.append(finding(spec, "META_SPLIT_COUNTS", None, path, f"split sizes differ: {text}",
                             subcode="splits", measured=measured, expected=dict(spec.splits)))
    return found
