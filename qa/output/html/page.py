"""The HTML QA report: what each section of report.html shows, computed from the report model and its evidence files."""

from __future__ import annotations

import base64
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader

from qa.output.files import Folder, opened
from qa.output.html.figures import (
    ClassSeries,
    class_distributions_figure,
    geometry_figure,
    image_values_figure,
    numbers_figure,
)
from qa.report.gate import describe
from qa.report.model import CaseReport, ClassStats, DriftStats, Evidence, ImageStats, OverlapStats, Report
from qa.rules.codes import CODES, SEVERITY_RANK
from qa.rules.finding import Finding

SEVERITIES = ("error", "warning", "info")
# The layout of each row of the findings blob that the page's script renders; a row is a list, not an object, to keep
# a 10,000-finding page small.
FINDING_COLUMNS = ("code", "severity", "case", "class", "path", "message", "details", "picture", "gate")
EXAMPLES_PER_CODE = 3
DETAILS_CHARS = 160
MAX_FINDING_ROWS = 50_000
# Past this many info findings the table starts with the errors and warnings only; the info findings are counted per
# code and class, and their rows wait in a blob of their own that the page parses when asked (a full release had
# 71,432 info findings of 88,114).
INLINE_INFO = 2_000
MAX_INFO_ROWS = 100_000
MAX_PICTURE_BYTES = 4 << 20  # a slice picture is tens of kilobytes; a larger file is not one tsqa wrote
REPORT_HTML = "report.html"
TOP_OVERLAPS = 30
TOP_VALUES = 8
# The findings a class's distribution marks: about a whole mask's size, shape or content.
DISTRIBUTION_CODES = frozenset({"LABEL_OUTLIER", "LABEL_CHAIN", "LABEL_FRAGMENTS", "LABEL_HU"})
MAX_DISTRIBUTIONS = 24
TOP_DRIFT = 40


@dataclass(frozen=True)
class CodeGroup:
    """All findings of one code, with the code's explanation (the text of `tsqa explain`)."""

    code: str
    title: str
    what: str
    why: str
    fix: str
    count: int
    by_severity: dict[str, int]
    examples: list[str]

    @property
    def severity(self) -> str:
        return max(self.by_severity, key=lambda s: SEVERITY_RANK[s])


@dataclass(frozen=True)
class CaseView:
    """One case as the page shows it: its meta.csv row, image facts, finding counts and the classes it contains."""

    case: str
    split: str | None
    errors: int
    warnings: int
    infos: int
    meta: dict[str, str | None]
    shape: list[int] | None
    spacing: list[float | None] | None
    axcodes: str | None
    dtype: str | None
    stats: ImageStats | None
    present: list[str] | None  # None: the deep pass did not measure the masks
    volumes_ml: dict[str, float]

    @property
    def flagged(self) -> bool:
        return self.errors + self.warnings + self.infos > 0


@dataclass(frozen=True)
class Filters:
    """The values each filter of the findings table offers."""

    codes: list[str]
    severities: list[str]
    cases: list[str]
    classes: list[str]


@dataclass(frozen=True)
class Bar:
    """An interquartile range and median on a log scale, as percentages of a table cell's width."""

    left: float
    width: float
    median: float


@dataclass(frozen=True)
class ClassRow:
    stats: ClassStats
    findings: int
    bar: Bar | None

    @property
    def share(self) -> float:
        return self.stats.cases_present / self.stats.cases_checked if self.stats.cases_checked else 0.0


@dataclass(frozen=True)
class ValueCount:
    value: str
    count: int


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of a list of numbers."""

    name: str
    low: float
    median: float
    high: float


@dataclass(frozen=True)
class SplitRow:
    split: str
    found: int
    expected: int | None

    @property
    def differs(self) -> bool:
        return self.expected is not None and self.expected != self.found


@dataclass(frozen=True)
class ColumnSummary:
    """The values of one meta.csv column over the cases: numbers get a spread, text the most common values."""

    name: str
    filled: int
    missing: int
    distinct: int
    spread: Spread | None
    top: list[ValueCount]


@dataclass(frozen=True)
class AxisSpread:
    """Grid size and spacing along one voxel axis over the cases; None where no case has a finite value."""

    name: str
    voxels: Spread | None
    spacing: Spread | None


@dataclass(frozen=True)
class Geometry:
    spacings: list[ValueCount]
    orientations: list[ValueCount]
    dtypes: list[ValueCount]
    axes: list[AxisSpread]
    without_image: int


@dataclass(frozen=True)
class InfoCount:
    """How many info findings of one code name one class (or no class), in how many cases."""

    code: str
    class_name: str | None
    count: int
    cases: int


@dataclass(frozen=True)
class FigureView:
    title: str
    svg: str  # markup figures.py wrote, every text from the data in it escaped


@dataclass(frozen=True)
class Picture:
    """A CT slice through a flagged mask, the mask outlined (and, for an overlap, the other mask too)."""

    id: str
    uri: str
    finding: Finding
    cls: str
    other: str | None


@dataclass(frozen=True)
class Page:
    """Everything report.html shows; the template only lays it out."""

    report: Report
    verdict: str
    started: str
    groups: list[CodeGroup]
    worst: list[CaseView]
    filters: Filters
    findings_json: str
    cases: list[CaseView]
    cases_json: str
    classes: list[ClassRow]
    volume_decades: tuple[float, float] | None
    class_findings: list[ValueCount]
    overlaps: list[OverlapStats]
    geometry: Geometry
    splits: list[SplitRow]
    expected_splits: bool
    columns: list[ColumnSummary]
    figures: list[FigureView]
    pictures: list[Picture]
    gate: list[str]
    index_href: str | None = None
    distributions: FigureView | None = None
    drift: list[DriftStats] | None = None
    info_counts: list[InfoCount] | None = None
    info_json: str | None = None  # the info findings' rows, when they are left out of findings_json
    info_rows: int = 0
    table_rows: int = 0  # the findings the page holds, info rows included


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' that could close it or start markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def code_groups(findings: list[Finding]) -> list[CodeGroup]:
    """Findings grouped by code, the most severe and then the most frequent code first."""
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    groups = []
    for code, items in by_code.items():
        known = CODES.get(code)
        counts = Counter(f.severity for f in items)
        groups.append(CodeGroup(
            code=code, title=known.title if known else code, what=known.what if known else "",
            why=known.why if known else "", fix=known.fix if known else "", count=len(items),
            by_severity={s: counts[s] for s in SEVERITIES if counts[s]},
            examples=[f.message for f in items[:EXAMPLES_PER_CODE]]))
    return sorted(groups, key=lambda g: (-SEVERITY_RANK[g.severity], -g.count, g.code))


def case_views(report: Report) -> list[CaseView]:
    """The cases, those with the most errors, then warnings, then infos first."""
    counts: dict[str, Counter] = {}
    for f in report.findings:
        if f.case is not None:
            counts.setdefault(f.case, Counter())[f.severity] += 1
    views = [_case_view(c, counts.get(c.case, Counter())) for c in report.cases]
    return sorted(views, key=lambda v: (-v.errors, -v.warnings, -v.infos, v.case))


def _case_view(case: CaseReport, counts: Counter) -> CaseView:
    image = case.image
    present = None if case.labels is None else sorted(name for name, stats in case.labels.items() if stats.voxels > 0)
    volumes = {name: case.labels[name].volume_ml for name in present or []}
    return CaseView(
        case=case.case, split=case.split, errors=counts["error"], warnings=counts["warning"], infos=counts["info"],
        meta=case.meta, shape=image.shape if image else None, spacing=image.spacing if image else None,
        axcodes="".join(a or "?" for a in image.axcodes) if image else None, dtype=image.dtype if image else None,
        stats=case.image_stats, present=present, volumes_ml=volumes)


def filters(findings: list[Finding]) -> Filters:
    codes = sorted({f.code for f in findings})
    present = {f.severity for f in findings}
    return Filters(codes=codes, severities=[s for s in SEVERITIES if s in present],
                   cases=sorted({f.case for f in findings if f.case is not None}),
                   classes=sorted({f.class_name for f in findings if f.class_name is not None}))


def details_text(details: dict) -> str:
    """Details as 'key=value; ...', cut at DETAILS_CHARS: the page is for reading, report.json keeps every number."""
    text = "; ".join(f"{key}={value}" if isinstance(value, str) else
                     f"{key}={json.dumps(value, ensure_ascii=False, separators=(',', ':'))}"
                     for key, value in details.items())
    return text if len(text) <= DETAILS_CHARS else text[:DETAILS_CHARS - 1] + "…"


def message_text(f: Finding) -> str:
    """The message without a leading 'path: ', which the path column already shows."""
    prefix = f"{f.path}: "
    if f.path and f.message.startswith(prefix) and len(f.message) > len(prefix):
        return f.message[len(prefix):]
    return f.message


def gate_text(f: Finding) -> str | None:
    """What the gate made of a finding, in a few words: waived (and why), new or worse against the baseline."""
    if f.waived is not None:
        until = f" until {f.waived.expires}" if f.waived.expires else ""
        return f"waived{until}: {f.waived.reason}"
    return {"new": "new", "worse": "worse than in the baseline"}.get(f.baseline or "")


def findings_json(findings: list[Finding], pictures: dict[str, str], codes: list[str] | None = None,
                  limit: int | None = None) -> str:
    """The findings as rows of FINDING_COLUMNS (code and severity as indices into their lists), most severe first.

    At most `limit` (MAX_FINDING_ROWS) rows: past that the page would no longer open quickly, and report.json has
    them all. `codes`: the list the code indices point into, when two blobs share it.
    """
    codes = codes if codes is not None else sorted({f.code for f in findings})
    code_index = {c: i for i, c in enumerate(codes)}
    ordered = sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code, f.case or "", f.path or ""))
    rows = [[code_index[f.code], SEVERITIES.index(f.severity), f.case, f.class_name, f.path, message_text(f),
             details_text(f.details), pictures.get(f.path or ""), gate_text(f)]
            for f in ordered[:MAX_FINDING_ROWS if limit is None else limit]]
    return script_json({"columns": FINDING_COLUMNS, "codes": codes, "severities": SEVERITIES, "rows": rows})


def info_counts(findings: list[Finding]) -> list[InfoCount]:
    """The info findings counted per code and class, the most frequent first."""
    counts: Counter = Counter()
    cases: dict[tuple[str, str | None], set[str]] = {}
    for f in findings:
        if f.severity == "info":
            key = (f.code, f.class_name)
            counts[key] += 1
            if f.case is not None:
                cases.setdefault(key, set()).add(f.case)
    return [InfoCount(code, name, n, len(cases.get((code, name), ())))
            for (code, name), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or ""))]


@dataclass(frozen=True)
class FindingBlobs:
    """The findings table's rows, and the info rows the page parses only when asked (None: they are in the table)."""

    table: str
    info: str | None
    info_rows: int
    rows: int  # in both blobs


def finding_blobs(findings: list[Finding], pictures: dict[str, str]) -> FindingBlobs:
    info = [f for f in findings if f.severity == "info"]
    if len(info) <= INLINE_INFO:
        return FindingBlobs(findings_json(findings, pictures), None, 0, min(len(findings), MAX_FINDING_ROWS))
    codes = sorted({f.code for f in findings})
    rest = [f for f in findings if f.severity != "info"]
    shown = min(len(info), MAX_INFO_ROWS)
    return FindingBlobs(findings_json(rest, pictures, codes), findings_json(info, pictures, codes, MAX_INFO_ROWS),
                        shown, min(len(rest), MAX_FINDING_ROWS) + shown)


def _number(value: float | None) -> str:
    """A header number as text: 'nan' and 'inf' as Python writes them, and 'nan' for the null report.json has for
    them."""
    return "nan" if value is None else f"{value:g}"


def human_number(value: float | int | None) -> str:
    """A number as a person reads it in a table: thousands separated, a few significant digits, '–' when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.1e}"


def cases_json(cases: list[CaseView]) -> str:
    """The cases for the page's script; present classes as [index into "classes", volume in mL] to stay compact."""
    names = sorted({name for c in cases for name in c.present or []})
    index = {name: i for i, name in enumerate(names)}

    def stats(s: ImageStats | None) -> dict | None:
        if s is None:
            return None
        shown = {"min": s.min, "max": s.max, "mean": s.mean, **s.percentiles}
        return {k: human_number(v) for k, v in shown.items() if _finite(v) is not None} | {
            "NaN voxels": human_number(s.nan_count), "infinite voxels": human_number(s.inf_count)}

    rows = [{
        "case": c.case, "split": c.split, "e": c.errors, "w": c.warnings, "i": c.infos,
        "shape": " × ".join(str(n) for n in c.shape) if c.shape else None,
        "spacing": " × ".join(_number(s) for s in c.spacing) if c.spacing else None,
        "axcodes": c.axcodes, "dtype": c.dtype, "meta": c.meta, "stats": stats(c.stats),
        "present": None if c.present is None else [[index[n], _volume(c.volumes_ml[n])] for n in c.present],
    } for c in cases]
    return script_json({"classes": names, "rows": rows})


def _volume(ml: float | None) -> float | None:
    return float(f"{ml:.3g}") if _finite(ml) is not None else None


def _spread(name: str, values: list[float | None]) -> Spread | None:
    finite = [v for v in values if _finite(v) is not None]
    if not finite:
        return None
    return Spread(name, min(finite), statistics.median(finite), max(finite))


def _counted(values: Iterable[str], limit: int | None = None) -> list[ValueCount]:
    return [ValueCount(v, n) for v, n in Counter(values).most_common(limit)]


def geometry(cases: list[CaseView]) -> Geometry:
    imaged = [c for c in cases if c.shape is not None and c.spacing is not None]
    axes = [AxisSpread(axis, _spread(axis, [float(c.shape[k]) for c in imaged if len(c.shape) > k]),
                       _spread(axis, [c.spacing[k] for c in imaged if len(c.spacing) > k]))
            for k, axis in enumerate("ijk")]
    return Geometry(
        spacings=_counted((" × ".join(_number(s) for s in c.spacing) for c in imaged), 10),
        orientations=_counted(c.axcodes for c in imaged if c.axcodes),
        dtypes=_counted(c.dtype for c in imaged if c.dtype),
        axes=[a for a in axes if a.voxels or a.spacing], without_image=len(cases) - len(imaged))


def split_rows(cases: list[CaseView], expected: dict[str, int] | None) -> list[SplitRow]:
    found = Counter(c.split or "(none)" for c in cases)
    names = list(expected or {}) + sorted(set(found) - set(expected or {}))
    return [SplitRow(name, found.get(name, 0), (expected or {}).get(name)) for name in names]


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def column_summaries(cases: list[CaseView], id_column: str,
                     types: dict[str, str]) -> tuple[list[ColumnSummary], dict[str, list[float]]]:
    """A summary of every meta.csv column but the id, and the numbers of the columns the spec types as numbers (a cell
    that is not a number is counted, and META_VALUE reports it, but it has no place in a spread)."""
    names: list[str] = []
    for c in cases:
        names += [n for n in c.meta if n not in names and n != id_column]
    summaries, numbers = [], {}
    for name in names:
        values = [c.meta.get(name) for c in cases]
        filled = [v.strip() for v in values if v is not None and v.strip() != ""]
        numeric = types.get(name) in ("int", "float")
        if numeric:
            numbers[name] = [p for p in map(_as_number, filled) if p is not None]
        spread = _spread(name, numbers[name]) if numeric else None
        summaries.append(ColumnSummary(
            name=name, filled=len(filled), missing=len(values) - len(filled), distinct=len(set(filled)),
            spread=spread, top=[] if spread else _counted(filled, TOP_VALUES)))
    return summaries, numbers


def volume_scale(classes: list[ClassStats]) -> tuple[float, float] | None:
    """The decades of mL that the volume bars of all classes span, for one shared log scale."""
    volumes = [v for c in classes for v in (c.volume_ml_q1, c.volume_ml_q3)
               if v is not None and v > 0 and math.isfinite(v)]
    if not volumes:
        return None
    low, high = math.floor(math.log10(min(volumes))), math.ceil(math.log10(max(volumes)))
    return float(low), float(max(high, low + 1))


def volume_bar(stats: ClassStats, scale: tuple[float, float] | None) -> Bar | None:
    values = (stats.volume_ml_q1, stats.volume_ml_median, stats.volume_ml_q3)
    if scale is None or any(v is None or not v > 0 or not math.isfinite(v) for v in values):
        return None
    low, high = scale
    q1, median, q3 = (100 * (math.log10(v) - low) / (high - low) for v in values)
    return Bar(left=round(q1, 2), width=round(max(q3 - q1, 0.5), 2), median=round(median, 2))


def class_rows(report: Report) -> tuple[list[ClassRow], list[ValueCount]]:
    """The deep pass's class aggregates with how many findings name each class, and the findings per class named."""
    named = Counter(f.class_name for f in report.findings if f.class_name is not None)
    scale = volume_scale(report.classes)
    rows = [ClassRow(stats, named.get(stats.name, 0), volume_bar(stats, scale)) for stats in report.classes]
    return rows, [ValueCount(name, n) for name, n in sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))]


def figures(cases: list[CaseView], numbers: dict[str, list[float]]) -> list[FigureView]:
    made: list[FigureView] = []
    imaged = [c for c in cases if c.shape is not None and c.spacing is not None]
    svg = geometry_figure([c.spacing for c in imaged], [c.shape for c in imaged])
    if svg:
        made.append(FigureView("Voxel spacing and grid size", svg))
    svg = numbers_figure(numbers)
    if svg:
        made.append(FigureView("Numeric meta.csv columns", svg))
    stats = [c.stats for c in cases if c.stats is not None]
    pct = {k: [s.percentiles[k] for s in stats if _finite(s.percentiles.get(k)) is not None]
           for k in ("p1", "p50", "p99")}
    svg = image_values_figure(pct["p1"], pct["p50"], pct["p99"])
    if svg:
        made.append(FigureView("Image values", svg))
    return made


def class_series(report: Report) -> list[ClassSeries]:
    """The classes whose distributions the page draws: those a label finding flags (most flagged first), then the
    classes with the most whole masks, at most MAX_DISTRIBUTIONS."""
    flagged: dict[str, set[str]] = {}
    for f in report.findings:
        if f.code in DISTRIBUTION_CODES and f.class_name is not None and f.case is not None:
            flagged.setdefault(f.class_name, set()).add(f.case)
    common = sorted((c for c in report.classes if c.cases_whole and c.name not in flagged),
                    key=lambda c: (-c.cases_whole, c.name))
    names = sorted(flagged, key=lambda n: (-len(flagged[n]), n)) + [c.name for c in common]
    series = []
    for name in names[:MAX_DISTRIBUTIONS]:
        whole = [c.labels[name] for c in report.cases if c.labels and name in c.labels and c.labels[name].whole]
        marked = [(c.case, c.labels[name].volume_ml, c.labels[name].extent_mm) for c in report.cases
                  if c.case in flagged.get(name, ()) and c.labels and name in c.labels and c.labels[name].voxels]
        series.append(ClassSeries(name, [s.volume_ml for s in whole if s.volume_ml is not None],
                                  [s.extent_mm for s in whole if s.extent_mm is not None], marked))
    return series


def distributions(report: Report) -> FigureView | None:
    svg = class_distributions_figure(class_series(report)) if report.classes else None
    return None if svg is None else FigureView("Per class distributions of whole masks, flagged cases in red", svg)


def pictures(report: Report, report_dir: Folder | None) -> list[Picture]:
    """The report's evidence pictures, read from beside report.json; a missing or unreadable file is left out."""
    if report_dir is None:
        return []
    by_fingerprint = {f.fingerprint: f for f in report.findings}
    made: list[Picture] = []
    for evidence in report.evidence:
        finding = by_fingerprint.get(evidence.fingerprint)
        png = _evidence_bytes(report_dir, evidence)
        if finding is None or png is None:
            continue
        uri = f"data:image/png;base64,{base64.b64encode(png).decode()}"
        made.append(Picture(id=f"picture-{len(made) + 1}", uri=uri,
                            finding=finding, cls=evidence.classes[0],
                            other=evidence.classes[1] if len(evidence.classes) > 1 else None))
    return made


def _evidence_bytes(report_dir: Folder, evidence: Evidence) -> bytes | None:
    if not evidence.file.endswith(".png"):
        return None
    return report_dir.read(evidence.file, MAX_PICTURE_BYTES)


def build_page(report: Report, report_dir: Folder | None = None, drawings: bool = True,
               index_href: str | None = None) -> Page:
    """What report.html shows, computed from the report and the evidence files in report_dir beside it.

    Without drawings the page has the same tables but no figures and no slice pictures.
    """
    spec = report.spec
    cases = case_views(report)
    by_case = {c.case: c for c in cases}
    classes, class_findings = class_rows(report)
    columns, numbers = column_summaries(cases, spec.id_column, spec.column_types)
    shown = pictures(report, report_dir) if drawings else []
    blobs = finding_blobs(report.findings, {p.finding.path: p.id for p in shown if p.finding.path})
    return Page(
        report=report, verdict="PASS" if report.summary.passed else "FAIL",
        started=report.started.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        groups=code_groups(report.findings), worst=[by_case[c] for c in report.summary.worst_cases if c in by_case],
        filters=filters(report.findings),
        findings_json=blobs.table, info_json=blobs.info, info_rows=blobs.info_rows, table_rows=blobs.rows,
        info_counts=info_counts(report.findings),
        cases=cases, cases_json=cases_json(cases), classes=classes,
        volume_decades=volume_scale(report.classes), class_findings=class_findings,
        overlaps=report.overlaps[:TOP_OVERLAPS], geometry=geometry(cases), splits=split_rows(cases, spec.splits),
        expected_splits=spec.splits is not None, columns=columns, figures=figures(cases, numbers) if drawings else [],
        pictures=shown, gate=describe(report), index_href=index_href,
        distributions=distributions(report) if drawings else None, drift=report.drift[:TOP_DRIFT])


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("qa.output.html", "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["num"] = human_number
    return env


def render_page(page: Page) -> str:
    return environment().get_template("report.html.j2").render(page=page, severities=SEVERITIES)


def render_html(report: Report, report_dir: Folder | None = None, index_href: str | None = None) -> str:
    return render_page(build_page(report, report_dir, index_href=index_href))


def write_html(report: Report, report_dir: Folder | Path, out_dir: Folder | Path | None = None,
               index_href: str | None = None) -> Path:
    """report.html in out_dir (default: report_dir), with the evidence pictures found in report_dir and, when given,
    a link to the index of the history it is kept in."""
    with opened(report_dir) as evidence, opened(out_dir or evidence) as out:
        return out.write(REPORT_HTML, render_html(report, evidence, index_href))
