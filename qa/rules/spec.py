"""Release specs: the pydantic model of a release's rules, and loading and listing the built-in ones."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.rules.codes import CODES, Severity
from qa.source.base import Entry


class SpecError(ValueError):
    """A spec that cannot be found or does not validate; the message is one line for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    file: str = "meta.csv"
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


class Archive(_Strict):
    """A published archive of the release, for verifying downloads."""

    name: str
    size: int | None = None
    md5: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    top_folder: str | None = None


class ReleaseSpec(_Strict):
    """Everything tsqa knows about one release: layout, classes, metadata rules, geometry, severities."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    version: str | None = None
    case_pattern: str = Field(r"^s\d{4}$", description="A case folder's name: the whole name must match, and \\d, "
                              "\\w and \\s mean ASCII only (re.fullmatch with re.ASCII).")
    image: str = "ct.nii.gz"
    mask_dir: str = "segmentations"
    mask_suffix: str = ".nii.gz"
    root_extra_allowed: list[str] = Field([], description="Glob patterns of extra names allowed at the release root.")
    classes: list[str] = Field(min_length=1)
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
    def _anatomy_names_classes(self) -> ReleaseSpec:
        unknown = sorted(self.anatomy.named_classes() - set(self.classes))
        if unknown:
            raise ValueError(f"anatomy names classes the spec does not list: {', '.join(unknown)}")
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


def _parse(text: str, origin: str) -> ReleaseSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec {origin} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"spec {origin} must be a YAML mapping")
    try:
        return ReleaseSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"spec {origin}: {where}: {first['msg']}{more}") from exc


def load_spec(name_or_path: str) -> ReleaseSpec:
    """A built-in spec by name, or a user's YAML file by path."""
    if name_or_path in builtin_spec_names():
        text = resources.files(SPEC_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text("utf-8")
        return _parse(text, name_or_path)
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError(f"spec file {path} does not exist")
        return _parse(path.read_text("utf-8"), str(path))
    known = ", ".join(builtin_spec_names())
    raise SpecError(f"unknown spec {name_or_path!r}; known: {known}, or a path to a YAML file")


def all_builtin_specs() -> list[ReleaseSpec]:
    return [load_spec(name) for name in builtin_spec_names()]
