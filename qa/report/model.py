"""The report model: findings, per-case facts and the summary; one pydantic model is the JSON report and its schema."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_serializer, field_validator

from qa.rules.baseline import BaselineEntry
from qa.rules.codes import Severity
from qa.rules.finding import Finding, fails
from qa.rules.spec import ReleaseSpec
from qa.rules.text import safe_text
from qa.rules.waivers import Waiver
from qa.scan.facts import ArchiveFacts

# Raised whenever report.json changes in a way a reader must know: fields removed, renamed or retyped.
# 3: a case's labels and the findings are tables (LabelTable, FindingTable); 2 is still read.
SCHEMA_VERSION = 3
Mode = Literal["quick", "deep"]
FailOn = Literal["error", "warning", "never"]
# JSON has no NaN or infinity: pydantic writes them as null, so a float that a hostile header can make non-finite
# must accept null when the report is read back.
Number = float | None


class SpecSnapshot(BaseModel):
    """What the report's readers need of the spec it was judged by, so that nothing after the judge reloads a spec."""

    id: str
    title: str
    image: str
    mask_dir: str
    mask_suffix: str
    classes: list[str]
    expected_cases: int | None
    splits: dict[str, int] | None
    meta_file: str
    id_column: str
    split_column: str | None
    column_types: dict[str, Literal["str", "int", "float"]] = Field(description="meta.csv columns and their types.")

    @classmethod
    def of(cls, spec: ReleaseSpec) -> SpecSnapshot:
        return cls(id=spec.id, title=spec.title, image=spec.image, mask_dir=spec.mask_dir, mask_suffix=spec.mask_suffix,
                   classes=list(spec.classes), expected_cases=spec.expected_cases,
                   splits=None if spec.splits is None else dict(spec.splits), meta_file=spec.meta.file,
                   id_column=spec.meta.id_column, split_column=spec.meta.split_column,
                   column_types={name: rule.type for name, rule in spec.meta.columns.items()})


class Evidence(BaseModel):
    """A picture the pipeline made of a finding, kept as a file beside report.json."""

    fingerprint: str = Field(description="The fingerprint of the finding it shows.")
    file: str = Field(description="Path relative to the report folder, '/'-separated.")
    case: str
    path: str = Field(description="The pictured mask's path relative to the release root.")
    classes: list[str] = Field(description="The classes outlined, the finding's first.")


class ImageSummary(BaseModel):
    """Header facts of a case's image."""

    shape: list[int]
    spacing: list[Number]
    axcodes: list[str | None]
    dtype: str
    affine: list[list[Number]]


class ImageStats(BaseModel):
    """Voxel statistics of a case's image (deep mode), in loaded units (HU for CT)."""

    voxels: int
    min: float | None
    max: float | None
    mean: float | None
    percentiles: dict[str, float] = Field(description="p1, p5, p50, p95, p99; exact up to 2**20 voxels, else on a "
                                                      "regular sample.")
    nan_count: int
    inf_count: int


class LabelStats(BaseModel):
    """One class's mask in one case (deep mode)."""

    voxels: int
    volume_ml: Number
    mean_hu: float | None = Field(description="Mean image value inside the mask; null when empty or off-grid.")
    bbox: list[list[int]] | None = Field(description="[[i0, j0, k0], [i1, j1, k1]] inclusive voxel bounds; null when "
                                                     "empty.")
    centroid_mm: list[Number] | None = Field(description="Centre of mass in world millimetres (the mask's own affine).")
    whole: bool | None = Field(None, description="Not empty and touching no face of its grid: not cut by the field of "
                                                 "view; null when empty.")
    extent_mm: Number = Field(None, description="Head-to-feet extent of the bounding box in mm; null when empty.")
    sd_hu: float | None = Field(None, description="Standard deviation of the image inside the mask; null when empty "
                                                  "or off-grid.")
    pieces: int | None = Field(None, description="26-connected pieces, counted for the classes the spec expects in "
                                                 "few pieces; null otherwise.")


LABEL_COLUMNS = tuple(LabelStats.model_fields)
EMPTY_MASK = LabelStats(voxels=0, volume_ml=0.0, mean_hu=None, bbox=None, centroid_mm=None)


class LabelTable(BaseModel):
    """A case's LabelStats as report.json writes them: one row per measured mask, the empty masks only named. A
    case has 117 masks, most of them empty; as objects their keys were most of a deep report's bytes."""

    columns: list[str] = Field(description="The LabelStats fields, in the order of each row's values: voxels, "
                                           "volume_ml, mean_hu, bbox, centroid_mm, whole, extent_mm, sd_hu, pieces.")
    rows: dict[str, list[Any]] = Field(description="Per class with voxels (or any value an empty mask lacks), its "
                                                   "values in the order of columns.")
    empty: list[str] = Field(description="The classes whose mask is empty: voxels 0, volume_ml 0, every other "
                                         "value null.")


def label_table(labels: dict[str, LabelStats]) -> dict:
    """The JSON form of a case's labels (LabelTable)."""
    rows, empty = {}, []
    for name, stats in labels.items():
        if stats == EMPTY_MASK:
            empty.append(name)
        else:
            rows[name] = [getattr(stats, column) for column in LABEL_COLUMNS]
    return {"columns": list(LABEL_COLUMNS), "rows": rows, "empty": empty}


def label_stats(table: dict) -> dict[str, dict | LabelStats]:
    """A LabelTable read back, in the order written (rows, then the empty masks): the fields of each row, for
    pydantic to validate as LabelStats, and for each empty mask the one EMPTY_MASK (never changed, so shared)."""
    known = LabelTable.model_validate(table)
    labels: dict[str, dict | LabelStats] = {name: dict(zip(known.columns, values, strict=True))
                                            for name, values in known.rows.items()}
    return labels | {name: EMPTY_MASK for name in known.empty}


Labels = Annotated[dict[str, LabelStats] | None,
                   WithJsonSchema({"anyOf": [LabelTable.model_json_schema(), {"type": "null"}]})]


class CaseReport(BaseModel):
    case: str
    split: str | None = None
    meta: dict[str, str | None] = Field(default_factory=dict, description="The case's meta.csv row as read.")
    image: ImageSummary | None = None
    image_stats: ImageStats | None = None
    labels: Labels = Field(None, description="Per class, deep mode only, as a table (report schema 2 wrote an "
                                             "object of LabelStats per class, still read).")
    findings: int = Field(0, description="How many findings name this case.")

    @field_validator("labels", mode="before")
    @classmethod
    def _table(cls, value: object) -> object:
        return label_stats(value) if isinstance(value, dict) and "columns" in value and "rows" in value else value

    @field_serializer("labels", when_used="json")
    def _as_table(self, labels: dict[str, LabelStats] | None) -> dict | None:
        return None if labels is None else label_table(labels)


class ClassStats(BaseModel):
    """One class over the release (deep mode). Volume quartiles are over whole masks: a mask cut by the field of
    view is not the organ's volume."""

    name: str
    cases_present: int
    cases_checked: int
    volume_ml_median: float | None
    volume_ml_q1: float | None
    volume_ml_q3: float | None
    mean_hu_median: float | None
    cases_whole: int = Field(0, description="Cases whose mask is not empty and not cut by the field of view.")
    volume_ml_mean: float | None = Field(None, description="Mean volume of all non-empty masks, cut ones included: the "
                                                           "statistic of the spec's reference table.")
    extent_mm_median: float | None = Field(None, description="Median head-to-feet extent of the whole masks.")


class DriftStats(BaseModel):
    """One class of the spec's reference table against the release (deep mode); the severities are those of the
    RELEASE_DRIFT findings, null where the change is within the tolerance."""

    name: str
    cases: int = Field(description="Cases whose mask of the class was measured.")
    present: int = Field(description="... and is not empty.")
    coverage: float | None
    reference_coverage: float
    coverage_pp: float | None = Field(description="Change of coverage in percentage points.")
    coverage_z: float | None
    volume_ml: float | None = Field(description="Mean volume of the non-empty masks, cut ones included.")
    reference_volume_ml: float | None
    volume_ratio: float | None
    volume_z: float | None
    coverage_severity: Severity | None = None
    volume_severity: Severity | None = None


class OverlapStats(BaseModel):
    """One pair of classes that share voxels somewhere in the release (deep mode)."""

    class_a: str
    class_b: str
    cases: int
    voxels: int
    volume_ml: Number
    max_share: float = Field(description="Largest share of the smaller mask covered by the overlap, over the cases.")


class BaselineCounts(BaseModel):
    """The findings against the baseline, and the baseline's findings that did not come back."""

    new: int
    unchanged: int
    worse: int = Field(description="In the baseline at a lower severity; counted with the new ones.")
    fixed: int = Field(description="Findings of the baseline that this run no longer has.")


class Summary(BaseModel):
    cases: int
    files: int
    by_severity: dict[Severity, int] = Field(description="Every finding, waived or not.")
    by_code: dict[str, int]
    worst_cases: list[str] = Field(description="Cases with the most errors, then warnings; at most ten.")
    fail_on: FailOn
    counted: Literal["all", "new"] = Field("all", description="Which findings --fail-on counted: all, or, with a "
                                                              "baseline, only those new (or worse) against it. "
                                                              "Waived findings never count.")
    failing: int = Field(0, description="How many findings made the run fail.")
    waived: int = Field(0, description="How many findings a waiver accepted.")
    baseline: BaselineCounts | None = Field(None, description="Against the baseline, when one was given.")
    passed: bool


class BaselineRef(BaseModel):
    """The baseline a check was compared with (--baseline)."""

    file: str = Field(description="The baseline file as given on the command line.")
    release: str = Field(description="The release of the run it records.")
    started: datetime = Field(description="When that run started.")
    findings: int = Field(description="How many findings it records.")


class WaiverUse(BaseModel):
    """One entry of the waivers file and what it did in this run."""

    entry: int = Field(description="Its number in the file, from 1.")
    line: int | None = Field(description="Its line in the file.")
    waiver: Waiver
    state: Literal["active", "expired", "unused"] = Field(description="active: in force and waived findings; "
                                                                      "expired: past its date, waived nothing; "
                                                                      "unused: in force but matched nothing.")
    matched: int = Field(description="Findings it waived (active) or would have waived (expired).")


class WaiversRef(BaseModel):
    """The waivers a check applied (--waivers), judged on one day."""

    file: str = Field(description="The waivers file as given on the command line.")
    today: date = Field(description="The day expiry dates were judged on (--today, or the check's UTC date).")
    entries: list[WaiverUse]


ChecksumVerdict = Literal["matches", "differs", "unpublished", "skipped", "unreadable"]


class ArchiveReport(BaseModel):
    """The zip archive a release was read from, as a whole: what a researcher asks of a download."""

    name: str
    size: int
    md5: str | None = Field(description="MD5 of every byte of the file; null when not computed (--no-checksum) or "
                                        "unreadable.")
    checksum: ChecksumVerdict = Field(description="Size and MD5 against the spec's published archive: matches, "
                                                  "differs, unpublished (no entry, or nothing to compare), skipped "
                                                  "(--no-checksum, size matches), unreadable.")
    published: str | None = Field(description="The spec's archive entry compared with (by name, else by size).")
    complete: bool = Field(description="The archive ends with its central directory: the download is not cut off.")
    members: int
    stored: int
    deflated: int
    zip64: bool
    top_folder: str | None = Field(description="The single folder the members lie in, read as the release root.")

    # The archive's file name and its members' names come from the download: made safe to store and show as findings'
    # names are (qa.rules.text).
    @field_validator("name", "published", "top_folder")
    @classmethod
    def _safe(cls, value: str | None) -> str | None:
        return None if value is None else safe_text(value)

    @classmethod
    def of(cls, archive: ArchiveFacts, spec: ReleaseSpec) -> ArchiveReport:
        layout = archive.layout
        entry = spec.published_archive(layout.name, layout.size)
        if entry is None or (entry.size is None and entry.md5 is None):
            verdict: ChecksumVerdict = "unpublished"
        elif entry.size is not None and entry.size != layout.size:
            verdict = "differs"
        elif entry.md5 is None:
            verdict = "matches"
        elif archive.md5 is None:
            verdict = archive.checksum
        else:
            verdict = "matches" if archive.md5 == entry.md5 else "differs"
        return cls(name=layout.name, size=layout.size, md5=archive.md5, checksum=verdict,
                   published=None if entry is None else entry.name,
                   complete=layout.directory == "read" and layout.truncation is None, members=layout.members,
                   stored=layout.stored, deflated=layout.deflated, zip64=layout.zip64, top_folder=layout.top_folder)


class CacheReport(BaseModel):
    """What the fact cache gave a check: the facts of unchanged cases, whose files were not read again."""

    folder: str = Field(description="The cache folder (--cache).")
    cases: int = Field(description="Cases whose facts came from the cache.")
    files: int = Field(description="NIfTI files whose facts came from the cache, not read.")
    verified: bool = Field(description="Each cached file's gzip trailer was compared with the file's before its facts "
                                       "were used (--verify-cache).")


FINDING_COLUMNS = ("code", "subcode", "severity", "case", "path", "class_name", "message", "shortened", "details",
                   "fingerprint", "baseline", "waived")
# bits of a row's "shortened": what was left out of its message and path, to be put back on reading
PATH_IN_MESSAGE, CASE_IN_PATH = 1, 2


class FindingTable(BaseModel):
    """The findings as report.json writes them: a row of values each, its code an index into codes and its message
    one into messages, written once each (88,114 findings of a full release repeated their keys, paths and
    messages)."""

    columns: list[str] = Field(description="The order of each row's values: code (index into codes), subcode, "
                                           "severity, case, path, class_name, message (index into messages), "
                                           "shortened, details, fingerprint, baseline, waived.")
    codes: list[str]
    messages: list[str] = Field(description="The messages, each once. A row's shortened is bits: 1, its message "
                                            "is 'PATH: ' and this one; 2, its path is 'CASE/' and the one in the row.")
    rows: list[list[Any]]


def finding_table(findings: list[Finding]) -> dict:
    """The JSON form of the findings (FindingTable)."""
    codes = sorted({f.code for f in findings})
    code_index = {code: k for k, code in enumerate(codes)}
    messages: dict[str, int] = {}
    rows = []
    for f in findings:
        shortened, message, path = 0, f.message, f.path
        if path and message.startswith(f"{path}: "):
            shortened, message = PATH_IN_MESSAGE, message[len(path) + 2:]
        if path and f.case and path.startswith(f"{f.case}/"):
            shortened, path = shortened | CASE_IN_PATH, path[len(f.case) + 1:]
        rows.append([code_index[f.code], f.subcode, f.severity, f.case, path, f.class_name,
                     messages.setdefault(message, len(messages)), shortened, f.details, f.fingerprint, f.baseline,
                     None if f.waived is None else f.waived.model_dump(mode="json")])
    return {"columns": list(FINDING_COLUMNS), "codes": codes, "messages": list(messages), "rows": rows}


def finding_dicts(table: dict) -> list[dict]:
    """A FindingTable read back as one dict of Finding fields per finding."""
    known = FindingTable.model_validate(table)
    found = []
    for values in known.rows:
        row = dict(zip(known.columns, values, strict=True))
        row["code"], row["message"] = known.codes[row["code"]], known.messages[row["message"]]
        shortened = row.pop("shortened")
        if shortened & CASE_IN_PATH:
            row["path"] = f"{row['case']}/{row['path']}"
        if shortened & PATH_IN_MESSAGE:
            row["message"] = f"{row['path']}: {row['message']}"
        found.append(row)
    return found


Findings = Annotated[list[Finding], WithJsonSchema(FindingTable.model_json_schema())]


class Report(BaseModel):
    """A tsqa check of one release."""

    model_config = ConfigDict(title="tsqa report")

    tool: Literal["tsqa"] = "tsqa"
    schema_version: int = SCHEMA_VERSION
    version: str
    spec_id: str
    spec: SpecSnapshot
    spec_reason: str = Field(description="Why this spec was used: given on the command line, or how it was detected.")
    release: str
    archive: ArchiveReport | None = Field(None, description="The zip archive the release was read from; null for a "
                                                            "folder.")
    mode: Mode
    subset: bool
    started: datetime
    duration_s: float
    summary: Summary
    findings: Findings = Field(description="Every finding, as a table (report schema 2 wrote a list of Finding "
                                           "objects, still read).")
    cases: list[CaseReport]
    classes: list[ClassStats] = Field(default_factory=list, description="Per class aggregates (deep mode).")
    overlaps: list[OverlapStats] = Field(default_factory=list,
                                         description="Overlapping class pairs, largest first (deep mode).")
    evidence: list[Evidence] = Field(default_factory=list, description="Slice pictures of findings, beside the report.")
    baseline: BaselineRef | None = Field(None, description="The baseline findings were marked against (--baseline).")
    fixed: list[BaselineEntry] = Field(default_factory=list,
                                       description="Baseline entries no finding of this run matched: fixed since.")
    waivers: WaiversRef | None = Field(None, description="The waivers applied (--waivers) and what each did.")
    drift: list[DriftStats] = Field(default_factory=list, description="Each class against the spec's reference table "
                                                                      "(deep mode, specs with a reference).")
    reference: str | None = Field(None, description="Where the spec's reference table comes from.")
    cache: CacheReport | None = Field(None, description="The fact cache this check used; null without one "
                                                        "(--no-cache, or a zip archive).")


    @field_validator("findings", mode="before")
    @classmethod
    def _from_table(cls, value: object) -> object:
        return finding_dicts(value) if isinstance(value, dict) and "columns" in value else value

    @field_serializer("findings", when_used="json")
    def _as_table(self, findings: list[Finding]) -> dict:
        return finding_table(findings)


def summarize(findings: list[Finding], cases: int, files: int, fail_on: FailOn, only_new: bool = False,
              fixed: int = 0) -> Summary:
    """The counts and the verdict. With `only_new` (a baseline was given) only new or worse findings fail the run;
    waived findings never do; `fixed` is how many baseline findings this run no longer has."""
    by_severity = Counter(f.severity for f in findings)
    per_case: dict[str, list[int]] = {}
    for f in findings:
        if f.case is not None and f.severity != "info":
            counts = per_case.setdefault(f.case, [0, 0])
            counts[0 if f.severity == "error" else 1] += 1
    worst = sorted(per_case, key=lambda c: (-per_case[c][0], -per_case[c][1], c))[:10]
    return Summary(
        cases=cases,
        files=files,
        by_severity={s: by_severity.get(s, 0) for s in ("error", "warning", "info")},
        by_code=dict(sorted(Counter(f.code for f in findings).items())),
        worst_cases=worst,
        fail_on=fail_on,
        counted="new" if only_new else "all",
        failing=sum(fails(f, fail_on, only_new) for f in findings),
        waived=sum(f.waived is not None for f in findings),
        baseline=BaselineCounts(new=sum(f.baseline == "new" for f in findings),
                                unchanged=sum(f.baseline == "unchanged" for f in findings),
                                worse=sum(f.baseline == "worse" for f in findings), fixed=fixed) if only_new else None,
        passed=not any(fails(f, fail_on, only_new) for f in findings),
    )


def schema_text() -> str:
    """The report's JSON Schema as committed in schemas/report.schema.json."""
    return json.dumps(Report.model_json_schema(), indent=2, sort_keys=True) + "\n"
