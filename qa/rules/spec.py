"""Release specs: the pydantic model of a release's rules, and loading and listing the built-in ones."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.rules.codes import CODES, Severity
from qa.rules.yamlfile import YamlFileError, line_of, parse_yaml, read_yaml
from qa.source.base import Entry


class SpecError(ValueError):
    """A spec that cannot be found or does not validate; the message is one line for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name_problem(value: str) -> str | None:
    """Why a text cannot be one file name inside the release, or None."""
    if value in ("", ".", ".."):
        return "is not a file name"
    if "/" in value or "\\" in value:
        return "must be a single file name, without '/' or '\\'"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    return None


def _file_name(value: str) -> str:
    problem = _name_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


def _relative_path(value: str) -> str:
    """A path inside the release: names joined by '/', never absolute, never '..', never an empty or '.' part."""
    if value.startswith("/"):
        raise ValueError(f"{value!r} is absolute; spec paths are relative names inside the release")
    for part in value.split("/"):
        problem = _name_problem(part)
        if problem:
            raise ValueError(f"{value!r} has a part {part!r} that {problem}; spec paths are relative names inside "
                             "the release")
    return value


def _suffix(value: str) -> str:
    """A mask suffix: appended to a class name (never '.' or '..'), it must keep the name one file name."""
    problem = _name_problem(f"x{value}")
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


# Fields joined into paths read from the release: a name or path that leaves it must not survive loading the spec.
FileName = Annotated[str, AfterValidator(_file_name)]
RelativePath = Annotated[str, AfterValidator(_relative_path)]


class ColumnRule(_Strict):
    """How one meta.csv column is judged: its type, whether it may be empty, and its allowed values."""

    type: Literal["str", "int", "float"] = "str"
    nullable: bool = True
    allowed: list[str] | None = None
    pattern: str | None = Field(None, description="A regular expression found in the value (\\d means 0-9); in the "
                                "id column, where values are case ids, it must match the whole value.")
    min: float | None = None
    max: float | None = None
    normalize: bool = Field(
        False,
        description="Judge the value after stripping, collapsing spaces and lower-casing; "
        "a value that needed it is reported as META_NORMALIZED (info).",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.ASCII)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from exc
        return value


class MetaSpec(_Strict):
    """Where meta.csv is, how it is encoded, and the rules of its columns."""

    file: RelativePath = "meta.csv"
    encoding: str = "utf-8-sig"
    separator: str = ";"
    id_column: str = "image_id"
    split_column: str | None = "split"
    columns: dict[str, ColumnRule]

    @model_validator(mode="after")
    def _key_columns_are_declared(self) -> MetaSpec:
        for key in (self.id_column, self.split_column):
            if key is not None and key not in self.columns:
                raise ValueError(f"column {key!r} is named as a key column but not declared in columns")
        return self


class GeometrySpec(_Strict):
    """What the image grid must look like, and how closely masks must match it."""

    spacing: tuple[float, float, float] | None = None
    spacing_tolerance: float = 0.01
    axcodes: tuple[str, str, str] | None = None
    affine_tolerance_mm: float = 1e-3
    orthonormal_tolerance: float = 1e-4
    max_voxels: int = Field(1_000_000_000, gt=0, description="More voxels than this is an absurd header.")
    max_bytes: int = Field(4 << 30, gt=0, description="More uncompressed voxel bytes than this is an absurd header; "
                           "it also bounds what the deep pass allocates for one file.")


class HuScaleSpec(_Strict):
    """When an image is no CT in Hounsfield units at all (IMAGE_NOT_CT, deep mode): blank, shifted, a label map."""

    blank_spread: float = Field(20, ge=0, description="p1 to p99, and the mean inside every mask judged by "
                                                   "labels.hu, within this many units: no anatomy (blank).")
    label_max: float = Field(255, gt=0, description="Whole numbers from 0 up to at most this, at least two of "
                                                    "them: the image is a segmentation (label_map).")
    shifted_min: float = Field(0, description="No voxel below this: no air, lung or fat, so the HU offset is lost "
                                              "(shifted).")
    shifted_mask_share: float = Field(0.75, gt=0, le=1, description="This share of the masks judged by labels.hu "
                                                                    "above their group's range: shifted.")
    shifted_min_masks: int = Field(3, ge=1, description="Fewer masks judged by labels.hu say nothing about a shift.")


class ValueSpec(_Strict):
    """What voxel values are plausible, and how much mask overlap is tolerated (deep mode)."""

    image_min: float | None = Field(None, description="Lowest plausible image value (loaded units, HU for CT).")
    image_max: float | None = Field(None, description="Highest plausible image value.")
    overlap_warning_share: float = Field(0.01, ge=0, le=1,
                                         description="Overlap / smaller mask at which an overlap is a warning.")
    overlap_error_share: float = Field(0.25, ge=0, le=1,
                                       description="... at which it is an error; below warning it is info.")
    padding_share: float = Field(0.05, ge=0, le=1,
                                 description="Share of a mask lying in the image's padding that is reported.")
    padding_exempt: list[str] = Field([], description="Glob patterns of classes that hold air, which padding values "
                                                      "can mimic.")
    hu_scale: HuScaleSpec = HuScaleSpec()

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> ValueSpec:
        if self.overlap_error_share < self.overlap_warning_share:
            raise ValueError("overlap_error_share must not be below overlap_warning_share")
        return self


class AnatomySpec(_Strict):
    """Where classes must lie relative to each other, judged on mask centroids in world (RAS) mm (deep mode)."""

    tolerance_mm: float = Field(10.0, ge=0, description="How far out of place a centroid may be before it is reported.")
    head_to_feet: list[list[str]] = Field([], description="Sequences of classes whose centroids descend, head first.")
    above: list[tuple[str, str]] = Field([], description="Pairs whose first class lies above the second.")
    left_right: bool = Field(False, description="Every X_left / X_right pair: X_left on the subject's left.")

    def named_classes(self) -> set[str]:
        return {name for group in (*self.head_to_feet, *self.above) for name in group}


class ChainSpec(_Strict):
    """Classes that follow each other head to feet without a gap (vertebrae, the ribs of one side)."""

    members: list[str] = Field(min_length=2, description="The chain's classes, head first.")
    reference_ml: list[float] | None = Field(
        None, description="Each member's typical volume (mL), for judging a member against its neighbours "
                          "(LABEL_CHAIN:merged); without it the chain is judged for gaps only.")

    @model_validator(mode="after")
    def _one_reference_per_member(self) -> ChainSpec:
        if self.reference_ml is not None:
            if len(self.reference_ml) != len(self.members):
                raise ValueError(f"reference_ml has {len(self.reference_ml)} values for {len(self.members)} members")
            if any(not v > 0 for v in self.reference_ml):
                raise ValueError("reference_ml values must be positive")
        return self


class MergedSpec(_Strict):
    """When a chain member is too large for its neighbours: two members labelled as one (LABEL_CHAIN:merged)."""

    volume_ratio: float = Field(1.6, gt=1, description="Volume over the neighbours' prediction that is a warning.")
    soft_volume_ratio: float = Field(1.4, gt=1, description="... that is a warning when the extent ratio also "
                                                            "reaches extent_ratio.")
    extent_ratio: float = Field(1.4, gt=1, description="Head-to-feet extent over the neighbours' prediction that "
                                                       "alone is info.")
    neighbour_distance: int = Field(2, ge=1, description="How many members away a neighbour may be.")
    neighbour_min_ml: float = Field(2.0, ge=0, description="Smaller neighbours do not predict.")
    extent_skip: list[str] = Field([], description="Members whose extent is not judged (atlas, axis, S1).")


class PiecesSpec(_Strict):
    """Classes expected in few connected pieces, and when extra pieces are reported (LABEL_FRAGMENTS)."""

    expected: dict[int, list[str]] = Field({}, description="Most pieces expected: {1: [liver, ...], 2: [...]}.")
    min_ml: float = Field(0.1, ge=0, description="Smaller pieces are specks and are not counted.")
    min_share: float = Field(0.01, ge=0, le=1, description="Pieces below this share of the mask are not counted.")
    warning_share: float = Field(0.10, ge=0, le=1, description="An extra piece this large a share is a warning.")
    far_mm: float = Field(30.0, ge=0, description="An extra piece this far from the largest one is a warning.")

    @property
    def limits(self) -> dict[str, int]:
        return {name: most for most, names in self.expected.items() for name in names}

    @field_validator("expected")
    @classmethod
    def _positive_counts(cls, value: dict[int, list[str]]) -> dict[int, list[str]]:
        if any(most < 1 for most in value):
            raise ValueError("piece counts must be at least 1")
        return value


class HuGroup(_Strict):
    """Classes of one tissue and the mean HU their masks may have (LABEL_HU)."""

    range: tuple[float, float] = Field(description="Plausible mean value inside a mask (loaded units, HU).")
    high: Severity = Field("warning", description="Severity of a mean above the range: info where contrast or metal "
                                                  "commonly explain it.")
    sd_max: float | None = Field(None, gt=0, description="Standard deviation inside a mask above which it holds "
                                                         "another tissue too.")
    classes: list[str]

    @model_validator(mode="after")
    def _range_ordered(self) -> HuGroup:
        if self.range[0] > self.range[1]:
            raise ValueError(f"range {list(self.range)} is not low, high")
        return self


class HuSpec(_Strict):
    min_voxels: int = Field(30, ge=1, description="Smaller masks are not judged: their mean is all boundary.")
    groups: dict[str, HuGroup] = {}

    def group_of(self, name: str) -> tuple[str, HuGroup] | None:
        return next(((key, g) for key, g in self.groups.items() if name in g.classes), None)


class OutlierSpec(_Strict):
    """Per class robust outliers over the release's whole masks (LABEL_OUTLIER)."""

    min_cases: int = Field(20, ge=5, description="Fewer whole masks of a class are not judged.")
    min_cases_warning: int = Field(50, ge=5, description="Fewer whole masks give info at most: the MAD of a few "
                                                         "dozen values is too uncertain for a warning.")
    z_info: float = Field(3.5, gt=0, description="Robust z (0.6745 (x - median) / MAD, on logs) that is info.")
    z_warning: float = Field(5.0, gt=0, description="... that is a warning.")
    mad_floor: float = Field(0.05, gt=0, description="Smallest MAD of the logs used: no finding for tiny spreads.")
    min_voxels: int = Field(100, ge=1, description="Classes whose typical whole mask has fewer voxels are not judged "
                                                   "by volume: it is mostly boundary.")
    min_classes: int = Field(5, ge=1, description="Whole masks of judged classes a case needs for its body size to "
                                                  "be taken out.")
    exclude: list[str] = Field([], description="Classes whose sizes span orders of magnitude (lesions).")

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> OutlierSpec:
        if self.z_warning < self.z_info:
            raise ValueError("z_warning must not be below z_info")
        if self.min_cases_warning < self.min_cases:
            raise ValueError("min_cases_warning must not be below min_cases")
        return self


class LabelSpec(_Strict):
    """What whole masks must look like, judged on the deep pass's facts: chains, pieces, HU, outliers."""

    chains: list[ChainSpec] = []
    merged: MergedSpec = MergedSpec()
    pieces: PiecesSpec = PiecesSpec()
    hu: HuSpec = HuSpec()
    outliers: OutlierSpec | None = None

    def named_classes(self) -> set[str]:
        names = {m for c in self.chains for m in c.members} | set(self.merged.extent_skip)
        names |= set(self.pieces.limits) | {n for g in self.hu.groups.values() for n in g.classes}
        return names | set(self.outliers.exclude if self.outliers else [])


class DriftTolerance(_Strict):
    coverage_pp: float = Field(gt=0, description="Change of coverage in percentage points.")
    volume_ratio: float = Field(gt=1, description="Mean volume over the reference's, or its inverse.")
    z: float = Field(ge=0, description="... and at least this many standard errors of the release's own estimate.")


class ReferenceClass(_Strict):
    cases: int | None = Field(None, ge=0)
    coverage: float = Field(ge=0, le=1, description="Share of cases whose mask is not empty.")
    volume_ml: float | None = Field(None, gt=0, description="Mean volume of the non-empty masks, cut ones included.")


class ReferenceSpec(_Strict):
    """A per-class reference of the release (RELEASE_DRIFT): coverage and typical volume, and where they come from."""

    source: str
    cases: int = Field(gt=0, description="How many cases the reference was measured on.")
    min_cases: int = Field(100, ge=1, description="Fewer measured cases are not compared: coverage and volumes of a "
                                                  "few cases tell the sample, not the release.")
    info: DriftTolerance = DriftTolerance(coverage_pp=5, volume_ratio=1.15, z=3)
    warning: DriftTolerance = DriftTolerance(coverage_pp=15, volume_ratio=1.5, z=5)
    classes: dict[str, ReferenceClass]


class Archive(_Strict):
    """A published archive of the release, for verifying downloads."""

    name: str
    size: int | None = None
    md5: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    top_folder: str | None = None


@functools.lru_cache(maxsize=64)
def _mask_files(mask_dir: str, suffix: str, classes: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, f"{mask_dir}/{name}{suffix}") for name in classes)


class ReleaseSpec(_Strict):
    """Everything tsqa knows about one release: layout, classes, metadata rules, geometry, severities."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    version: str | None = None
    case_pattern: str = Field(r"^s\d{4}$", description="A case folder's name: the whole name must match, and \\d, "
                              "\\w and \\s mean ASCII only (re.fullmatch with re.ASCII).")
    image: RelativePath = "ct.nii.gz"
    mask_dir: RelativePath = "segmentations"
    mask_suffix: Annotated[str, AfterValidator(_suffix)] = ".nii.gz"
    root_extra_allowed: list[str] = Field([], description="Glob patterns of extra names allowed at the release root.")
    classes: list[FileName] = Field(min_length=1, description="The class names, each a mask's file name.")
    meta: MetaSpec
    expected_cases: int | None = Field(None, ge=0)
    splits: dict[str, int] | None = None
    image_dtypes: list[str] = Field(min_length=1)
    mask_dtypes: list[str] = Field(min_length=1)
    readers: list[Literal["nibabel", "itk"]] = Field(
        ["nibabel", "itk"], min_length=1,
        description="The readers the release's users open it with: each must place every file where the others do "
                    "(itk: ITK 5.4, SimpleITK 2.5, hence TotalSegmentator, nnU-Net, 3D Slicer).")
    nifti_versions: list[Literal[1, 2]] = Field(
        [1], min_length=1, description="The NIfTI versions those readers open (ITK 5.4 opens NIfTI-1 only).")
    geometry: GeometrySpec = GeometrySpec()
    values: ValueSpec = ValueSpec()
    anatomy: AnatomySpec = AnatomySpec()
    labels: LabelSpec = LabelSpec()
    reference: ReferenceSpec | None = None
    archives: list[Archive] = []
    severities: dict[str, Severity]

    @field_validator("case_pattern")
    @classmethod
    def _case_pattern_compiles(cls, value: str) -> str:
        case_matcher(value)
        return value

    @field_validator("classes")
    @classmethod
    def _classes_unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        dupes = [name for name in value if name in seen or seen.add(name)]
        if dupes:
            raise ValueError(f"classes listed twice: {', '.join(sorted(set(dupes)))}")
        return value

    @model_validator(mode="after")
    def _rules_name_classes(self) -> ReleaseSpec:
        named = {"anatomy": self.anatomy.named_classes(), "labels": self.labels.named_classes(),
                 "reference": set(self.reference.classes) if self.reference else set()}
        for section, names in named.items():
            unknown = sorted(names - set(self.classes))
            if unknown:
                raise ValueError(f"{section} names classes the spec does not list: {', '.join(unknown)}")
        return self

    @field_validator("severities")
    @classmethod
    def _severities_name_known_codes(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        unknown = sorted(key for key in value if not _known_key(key))
        if unknown:
            raise ValueError(f"severities name unknown finding codes or subcodes: {', '.join(unknown)} "
                             "('tsqa explain CODE' lists a code's subcodes)")
        return value

    def mask_file(self, name: str) -> str:
        return f"{self.mask_dir}/{name}{self.mask_suffix}"

    def mask_files(self) -> tuple[tuple[str, str], ...]:
        """(class, mask file relative to its case folder) of every class: judging asks for them for every case."""
        return _mask_files(self.mask_dir, self.mask_suffix, tuple(self.classes))

    def class_of(self, case: str, path: str) -> str:
        """The class name of a mask file's path in a case: the inverse of mask_file."""
        return path.removeprefix(f"{case}/{self.mask_dir}/").removesuffix(self.mask_suffix)

    def published_archive(self, name: str, size: int) -> Archive | None:
        """The `archives` entry a downloaded archive is checked against: the one of its file name, else (a renamed
        download) the one of its size; None when there is neither."""
        by_name = [a for a in self.archives if a.name == name]
        by_size = [a for a in self.archives if a.size == size]
        return (by_name or by_size or [None])[0]

    def severity(self, code: str, subcode: str | None = None) -> Severity:
        """The severity of a code, or of one subcode of it (`CODE:subcode` in the YAML)."""
        if subcode is not None and f"{code}:{subcode}" in self.severities:
            return self.severities[f"{code}:{subcode}"]
        if code in self.severities:
            return self.severities[code]
        return CODES[code].severity


def _known_key(key: str) -> bool:
    """Whether a severities key is a code of the catalogue, or `CODE:subcode` with a subcode of that code."""
    code, _, subcode = key.partition(":")
    known = CODES.get(code)
    return known is not None and (not subcode or known.subcode(subcode) is not None)


@functools.cache
def case_matcher(case_pattern: str) -> Callable[[str], bool]:
    """Whether a name is a case id: the whole name matches, with ASCII digits. A search would let 's0001' followed by
    a newline ('$' matches before a final newline) or an s and four Arabic-Indic digits (\\d in Unicode mode) pass."""
    try:
        pattern = re.compile(case_pattern, re.ASCII)
    except re.error as exc:
        raise ValueError(f"case_pattern {case_pattern!r} is not a regular expression: {exc}") from exc
    return lambda name: pattern.fullmatch(name) is not None


def case_folders(root_entries: list[Entry], case_pattern: str) -> list[str]:
    """The folders at the release root whose names are case ids."""
    is_case = case_matcher(case_pattern)
    return [e.path for e in root_entries if e.kind == "dir" and is_case(e.path)]


SPEC_PACKAGE = "qa.schemas"


def builtin_spec_names() -> list[str]:
    files = resources.files(SPEC_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in files.iterdir() if p.name.endswith(".yaml"))


def _validated(data: object, tree: yaml.Node | None, origin: str) -> ReleaseSpec:
    if not isinstance(data, dict):
        raise SpecError(f"spec {origin} must be a YAML mapping")
    try:
        return ReleaseSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = line_of(tree, first["loc"])
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        at = f"{origin}:{line}" if line is not None else origin
        raise SpecError(f"spec {at}: {where}: {message}{more}") from exc


def load_spec(name_or_path: str) -> ReleaseSpec:
    """A built-in spec by name, or a user's YAML file by path."""
    try:
        if name_or_path in builtin_spec_names():
            text = resources.files(SPEC_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text("utf-8")
            return _validated(*parse_yaml(text, name_or_path), name_or_path)
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") or path.exists():
            if not path.is_file():
                raise SpecError(f"spec file {path} does not exist")
            return _validated(*read_yaml(path, "spec"), str(path))
    except YamlFileError as exc:
        raise SpecError(str(exc)) from exc
    known = ", ".join(builtin_spec_names())
    raise SpecError(f"unknown spec {name_or_path!r}; known: {known}, or a path to a YAML file")


def all_builtin_specs() -> list[ReleaseSpec]:
    return [load_spec(name) for name in builtin_spec_names()]
