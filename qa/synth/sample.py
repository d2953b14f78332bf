"""Synthetic releases in a spec's exact layout, and injectors that break them on purpose to make each finding.

A fault is named `CODE:subcode` after the finding it makes (a bare CODE names its most common subcode)."""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import io
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.nifti1 import Nifti1Header
from nibabel.openers import Opener

from qa.rules.spec import ReleaseSpec
from qa.rules.text import safe_text
from qa.synth.phantom import REGIONS, Body, Frame, Region, render

DEFAULT_SHAPE = (48, 40, 64)
DEFAULT_SPACING = (1.5, 1.5, 1.5)
HEADER_BYTES = 348


@dataclass(frozen=True)
class InjectedFault:
    """A fault put into a sample: the finding code (and subcode) it must produce, its case (None: release level) and
    its path (None: a finding about an archive member that has no path in the release)."""

    code: str
    case: str | None
    path: str | None
    subcode: str | None = None


@dataclass
class Sample:
    """A written synthetic release: where it is, its cases with their splits, and the faults injected into it."""

    root: Path
    cases: list[str]
    faults: list[InjectedFault] = field(default_factory=list)
    seed: int = 0
    shape: tuple[int, int, int] = DEFAULT_SHAPE
    splits: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Grid:
    """A voxel grid in the world: RAS voxel order flipped along some axes, so a case can be stored as LPS."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    flip: tuple[bool, bool, bool] = (False, False, False)

    def affine(self) -> np.ndarray:
        affine = np.diag([*self.spacing, 1.0])
        affine[:3, 3] = self.origin
        for axis, flipped in enumerate(self.flip):
            if flipped:  # the last voxel along the axis takes the world position of the first
                affine[:3, 3] += affine[:3, axis] * (self.shape[axis] - 1)
                affine[:3, axis] *= -1
        return affine

    def orient(self, data: np.ndarray) -> np.ndarray:
        axes = tuple(axis for axis, flipped in enumerate(self.flip) if flipped)
        return np.flip(data, axes) if axes else data


@dataclass(frozen=True)
class CasePlan:
    """Everything random about one case, drawn once from the seed, so its files and its meta.csv row agree."""

    case: str
    seed: int
    index: int
    split: str
    region: Region
    sex: str
    age: int
    institute: str
    manufacturer: str
    scanner_model: str
    kvp: int
    pathology: str
    pathology_location: str
    origin_z: float
    shift: tuple[float, float]
    scale: float


SCANNERS = {"siemens": "somatom definition as", "ge": "revolution ct", "philips": "ingenuity ct",
            "toshiba": "aquilion one"}


def _rng(seed: int, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed % (1 << 32), index, purpose])


def split_values(spec: ReleaseSpec) -> list[str]:
    """The splits cases are dealt into: the spec's expected splits, else the split column's allowed values."""
    if spec.splits:
        return list(spec.splits)
    column = spec.meta.columns.get(spec.meta.split_column or "")
    return list(column.allowed) if column is not None and column.allowed else ["train"]


def plan_case(spec: ReleaseSpec, seed: int, index: int) -> CasePlan:
    """The index-th case of a seed: splits dealt in turn, fields of view in turn, the rest drawn at random."""
    rng = _rng(seed, index, 0)
    splits = split_values(spec)
    region = REGIONS[(seed + index) % len(REGIONS)]
    manufacturer = str(rng.choice(list(SCANNERS)))
    pathology = "trauma" if region.study_type == "ct polytrauma" else str(rng.choice(["no_pathology", "tumor"]))
    return CasePlan(
        case=f"s{index:04d}", seed=seed, index=index, split=splits[index % len(splits)], region=region,
        sex=str(rng.choice(["m", "f"])), age=int(rng.integers(21, 95)), institute=str(rng.choice(list("ABCDEFGH"))),
        manufacturer=manufacturer, scanner_model=SCANNERS[manufacturer], kvp=int(rng.choice([100, 120, 120, 140])),
        pathology=pathology, pathology_location="liver" if pathology == "tumor" else "",
        origin_z=round(float(rng.uniform(-600.0, -200.0)), 3),
        shift=(round(float(rng.uniform(-0.03, 0.03)), 3), round(float(rng.uniform(-0.03, 0.03)), 3)),
        scale=round(float(rng.uniform(0.92, 1.0)), 3),
    )


def default_grid(spec: ReleaseSpec, plan: CasePlan, shape: tuple[int, int, int]) -> Grid:
    """The case's RAS grid at the spec's spacing, centred on the world's x = y = 0 (the patient's midline)."""
    spacing = tuple(spec.geometry.spacing or DEFAULT_SPACING)
    origin = (-(shape[0] - 1) / 2 * spacing[0], -(shape[1] - 1) / 2 * spacing[1], plan.origin_z)
    return Grid(shape=shape, spacing=spacing, origin=origin)


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write as the release's files are written: nibabel's NIfTI-1, sform_code 2, qform_code 0, gzip level 1,
    mtime 0."""
    nib.save(nib.Nifti1Image(data, affine), path)


class MaskWriter:
    """Writes uint8 masks of one grid byte for byte as save_nifti would, but builds the header only once per grid."""

    def __init__(self, shape: tuple[int, int, int], affine: np.ndarray) -> None:
        empty = np.zeros(shape, dtype=np.uint8)
        whole = nib.Nifti1Image(empty, affine).to_bytes()
        self.prefix = whole[: len(whole) - empty.nbytes]  # header, extension flag and padding up to vox_offset

    def write(self, path: Path, mask: np.ndarray) -> None:
        with Opener(str(path), "wb") as fh:
            fh.write(self.prefix)
            fh.write(mask.tobytes(order="F"))


def write_case(root: Path, spec: ReleaseSpec, plan: CasePlan, grid: Grid) -> None:
    """A case folder: the CT and one binary uint8 mask per class on the same grid; empty masks are identical files."""
    frame = Frame(shape=grid.shape, region=plan.region, shift=plan.shift, scale=plan.scale)
    body = render(spec.classes, frame, plan.sex, _rng(plan.seed, plan.index, 1))
    write_body(root / plan.case, spec, body, grid)


def write_body(case_dir: Path, spec: ReleaseSpec, body: Body, grid: Grid) -> None:
    """A rendered body as a case folder: its CT and one mask per class on the grid; empty masks are copies of one
    file, as in the real releases."""
    (case_dir / spec.mask_dir).mkdir(parents=True, exist_ok=True)
    affine = grid.affine()
    save_nifti(case_dir / spec.image, grid.orient(body.ct), affine)
    writer = MaskWriter(grid.shape, affine)
    empty: Path | None = None
    for name in spec.classes:
        path = case_dir / spec.mask_file(name)
        mask = body.mask(name)
        if mask.any() or empty is None:
            writer.write(path, grid.orient(mask))
            if not mask.any():
                empty = path
        else:
            shutil.copyfile(empty, path)


def write_cases(root: Path, spec: ReleaseSpec, cases: Iterable[tuple[CasePlan, Grid]]) -> list[str]:
    """Write planned cases, each on its grid, and name them; a process pool can write a release's cases in parts."""
    written = []
    for plan, grid in cases:
        write_case(root, spec, plan, grid)
        written.append(plan.case)
    return written


def _meta_value(spec: ReleaseSpec, column: str, plan: CasePlan) -> str:
    known = {
        spec.meta.id_column: plan.case, spec.meta.split_column: plan.split, "age": str(plan.age), "gender": plan.sex,
        "institute": plan.institute, "study_type": plan.region.study_type, "manufacturer": plan.manufacturer,
        "scanner_model": plan.scanner_model, "kvp": str(plan.kvp), "pathology": plan.pathology,
        "pathology_location": plan.pathology_location,
    }
    if column in known:
        return known[column]
    # A column the model does not know gets a value only where its rule demands one.
    rule = spec.meta.columns[column]
    if rule.allowed:
        return rule.allowed[plan.index % len(rule.allowed)]
    if rule.type != "str" and not rule.nullable:
        return f"{rule.min if rule.min is not None else 0:g}"
    return ""


def write_meta_rows(root: Path, spec: ReleaseSpec, header: list[str], rows: list[list[str]],
                    separator: str | None = None) -> None:
    """meta.csv as the release has it: the spec's encoding (UTF-8 with BOM) and separator, '\\n' line ends."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=separator or spec.meta.separator, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    (root / spec.meta.file).write_bytes(text.getvalue().encode(spec.meta.encoding))


def write_meta(root: Path, spec: ReleaseSpec, plans: Sequence[CasePlan]) -> None:
    """meta.csv with the spec's columns and one row per planned case, in the order given."""
    columns = list(spec.meta.columns)
    write_meta_rows(root, spec, columns, [[_meta_value(spec, column, plan) for column in columns] for plan in plans])


def read_meta_rows(root: Path, spec: ReleaseSpec) -> tuple[list[str], list[list[str]]]:
    text = (root / spec.meta.file).read_bytes().decode(spec.meta.encoding)
    header, *rows = csv.reader(io.StringIO(text), delimiter=spec.meta.separator)
    return header, rows


def make_sample(out: Path, spec: ReleaseSpec, cases: int, faults: Sequence[str] = (), seed: int = 0,
                shape: tuple[int, int, int] = DEFAULT_SHAPE) -> Sample:
    """Write a synthetic release of `cases` cases into the new or empty folder `out`, then inject the named faults."""
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        raise ValueError(f"no fault named {', '.join(unknown)}")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; a sample is only written into a new or empty folder")
    plans = [plan_case(spec, seed, index) for index in range(cases)]
    write_cases(out, spec, [(plan, default_grid(spec, plan, shape)) for plan in plans])
    write_meta(out, spec, plans)
    sample = Sample(root=out, cases=[p.case for p in plans], seed=seed, shape=shape,
                    splits={p.case: p.split for p in plans})
    inject_faults(sample, spec, faults)
    return sample


def inject_faults(sample: Sample, spec: ReleaseSpec, faults: Sequence[str]) -> list[InjectedFault]:
    """Break a written sample: the k-th fault goes to the k-th case from the end, so a few faults hit different cases.

    Faults that hit the same case can undo each other (a case rewritten at 3 mm loses an earlier corrupt file).
    """
    if faults and not sample.cases:
        raise ValueError("faults need at least one case to go into")
    injected: list[InjectedFault] = []
    for k, name in enumerate(faults):
        made = FAULTS[name](sample, spec, sample.cases[-1 - k % len(sample.cases)])
        injected += [dataclasses.replace(fault, subcode=fault_subcode(name)) for fault in made]
    sample.faults += injected
    return injected


# Injectors. Each mutates a written sample and returns the faults it made, with the exact path the finding carries.

Injector = Callable[[Sample, ReleaseSpec, str], list[InjectedFault]]
Damage = Callable[[Path], None]
HeaderChange = Callable[[Nifti1Header], None]


@dataclass(frozen=True)
class Fault:
    """One way to break a release: the injector, what it does, and codes it brings along by its nature."""

    inject: Injector
    what: str
    collateral: frozenset[str] = frozenset()
    # shows only in a release of many cases at a realistic scale (qa.synth.population): statistics over the release,
    # or neighbours too small on the sample's grid to predict a member
    population: bool = False

    def __call__(self, sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        return self.inject(sample, spec, case)


def _mask_name(spec: ReleaseSpec) -> str:
    return "liver" if "liver" in spec.classes else spec.classes[0]


def _mask_path(spec: ReleaseSpec, case: str, name: str | None = None) -> str:
    return f"{case}/{spec.mask_file(name or _mask_name(spec))}"


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine


def _read_stream(path: Path) -> bytes:
    with Opener(str(path)) as fh:
        return fh.read()


def rewrite_header(path: Path, change: HeaderChange) -> None:
    """Change header fields of a .nii.gz in place, keeping the voxel bytes as they are."""
    raw = _read_stream(path)
    header = Nifti1Header.from_fileobj(io.BytesIO(raw[:HEADER_BYTES]), check=False)
    change(header)
    with Opener(str(path), "wb") as fh:
        fh.write(header.binaryblock + raw[HEADER_BYTES:])


def _edit_header(change: HeaderChange) -> Damage:
    return lambda path: rewrite_header(path, change)


def _edit_voxels(change: Callable[[np.ndarray], np.ndarray]) -> Damage:
    def damage(path: Path) -> None:
        data, affine = _load(path)
        save_nifti(path, change(data), affine)

    return damage


def _on_file(code: str, target: str, damage: Damage) -> Injector:
    """Damage one file of the case: its image, or its preferred mask (liver)."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        path = f"{case}/{spec.image}" if target == "image" else _mask_path(spec, case)
        damage(sample.root / path)
        return [InjectedFault(code, case, path)]

    return inject


def _on_case_headers(code: str, change: HeaderChange, whole_case: bool) -> Injector:
    """Change the image's header, or every file's header alike so that masks keep matching their image."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        masks = [sample.root / case / spec.mask_file(name) for name in spec.classes] if whole_case else []
        for path in [sample.root / case / spec.image, *masks]:
            rewrite_header(path, change)
        return [InjectedFault(code, case, f"{case}/{spec.image}")]

    return inject


def _rewrite_case(code: str, grid_of: Callable[[Grid], Grid]) -> Injector:
    """Write the case again, CT and masks alike, on another grid."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        plan = plan_case(spec, sample.seed, sample.cases.index(case))
        shutil.rmtree(sample.root / case)
        write_case(sample.root, spec, plan, grid_of(default_grid(spec, plan, sample.shape)))
        return [InjectedFault(code, case, f"{case}/{spec.image}")]

    return inject


def _rewrite_meta(sample: Sample, spec: ReleaseSpec, change: Callable[[list[str], list[list[str]]], None]) -> None:
    header, rows = read_meta_rows(sample.root, spec)
    change(header, rows)
    write_meta_rows(sample.root, spec, header, rows)


def _row_of(header: list[str], rows: list[list[str]], spec: ReleaseSpec, case: str) -> list[str]:
    column = header.index(spec.meta.id_column)
    return next(row for row in rows if row[column] == case)


def _non_key_column(spec: ReleaseSpec) -> str:
    return next(c for c in spec.meta.columns if c not in (spec.meta.id_column, spec.meta.split_column))


def _set_cell(sample: Sample, spec: ReleaseSpec, case: str, column: str, value: str) -> None:
    def change(header: list[str], rows: list[list[str]]) -> None:
        _row_of(header, rows, spec, case)[header.index(column)] = value

    _rewrite_meta(sample, spec, change)


def _cell(code: str, column: str, value: str) -> Injector:
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        _set_cell(sample, spec, case, column, value)
        return [InjectedFault(code, case, spec.meta.file)]

    return inject


def meta_missing(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    (sample.root / spec.meta.file).unlink()
    return [InjectedFault("META_MISSING", None, spec.meta.file)]


def meta_bad_encoding(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    column = "institute" if "institute" in spec.meta.columns else _non_key_column(spec)
    _set_cell(sample, spec, case, column, "Universitätsspital")
    path = sample.root / spec.meta.file
    path.write_bytes(path.read_bytes().replace("ä".encode(), "ä".encode("latin-1")))
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_no_separator(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    header, rows = read_meta_rows(sample.root, spec)
    write_meta_rows(sample.root, spec, header, rows, separator=",")
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_empty(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    (sample.root / spec.meta.file).write_bytes(b"")
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_unclosed_quote(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    path = sample.root / spec.meta.file
    path.write_bytes(path.read_bytes() + b'"' + case.encode() + b"\n")
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_too_wide(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    path = sample.root / spec.meta.file
    header, rest = path.read_bytes().split(b"\n", 1)
    extra = "".join(f"{spec.meta.separator}column_{i}" for i in range(2_000)).encode(spec.meta.encoding)
    path.write_bytes(header + extra + b"\n" + rest)
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_dangling_link(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    _dangling_link(sample.root / spec.meta.file)
    return [InjectedFault("META_UNREADABLE", None, spec.meta.file)]


def meta_drop_column(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    def change(header: list[str], rows: list[list[str]]) -> None:
        column = header.index(_non_key_column(spec))
        for line in (header, *rows):
            del line[column]

    _rewrite_meta(sample, spec, change)
    return [InjectedFault("META_COLUMNS", None, spec.meta.file)]


def meta_unknown_column(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    def change(header: list[str], rows: list[list[str]]) -> None:
        header.append("comment")
        for row in rows:
            row.append("checked")

    _rewrite_meta(sample, spec, change)
    return [InjectedFault("META_COLUMNS", None, spec.meta.file)]


def meta_duplicate_id(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    _rewrite_meta(sample, spec, lambda header, rows: rows.append(list(_row_of(header, rows, spec, case))))
    return [InjectedFault("META_DUPLICATE_ID", case, spec.meta.file)]


def meta_move_split(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    column = spec.meta.split_column
    if column is None:
        raise ValueError(f"spec {spec.id} has no split column")
    candidates = [*split_values(spec), *(spec.meta.columns[column].allowed or [])]
    other = next(s for s in candidates if s != sample.splits[case])
    _set_cell(sample, spec, case, column, other)
    sample.splits[case] = other
    return [InjectedFault("META_SPLIT_COUNTS", None, spec.meta.file)]


def case_missing(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    shutil.rmtree(sample.root / case)
    return [InjectedFault("CASE_MISSING", case, case)]


def case_unlisted(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    _rewrite_meta(sample, spec, lambda header, rows: rows.remove(_row_of(header, rows, spec, case)))
    return [InjectedFault("CASE_UNLISTED", case, case)]


def mask_folder_missing(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    path = f"{case}/{spec.mask_dir}"
    shutil.rmtree(sample.root / path)
    return [InjectedFault("FILE_MISSING", case, path)]


APPLE_DOUBLE = bytes.fromhex("00051607 00020000") + bytes(4088)
FINDER_STORE = b"\x00\x00\x00\x01Bud1" + bytes(2040)


def macos_junk(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    twin = f"{case}/{spec.mask_dir}/._{_mask_name(spec)}{spec.mask_suffix}"
    finder = f"{case}/.DS_Store"
    (sample.root / twin).write_bytes(APPLE_DOUBLE)
    (sample.root / finder).write_bytes(FINDER_STORE)
    return [InjectedFault("FILE_UNEXPECTED", case, twin), InjectedFault("FILE_UNEXPECTED", case, finder)]


def link_in_case(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    link = f"{case}/image.nii.gz"
    (sample.root / link).symlink_to(spec.image.rsplit("/", 1)[-1])
    return [InjectedFault("FILE_UNEXPECTED", case, link)]


def stray_copy(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    copy = f"{case}/{spec.mask_dir}/{_mask_name(spec)} (1){spec.mask_suffix}"
    shutil.copyfile(sample.root / _mask_path(spec, case), sample.root / copy)
    return [InjectedFault("FILE_UNEXPECTED", case, copy)]


BAD_NAME = b"notes_\xe9.txt"


def badly_named_file(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """A file whose name holds the byte 0xE9 (Latin-1 'e' acute), which is not UTF-8."""
    path = f"{case}/{os.fsdecode(BAD_NAME)}"
    (sample.root / path).write_bytes(b"checked\n")
    return [InjectedFault("FILE_UNEXPECTED", case, safe_text(path))]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cut_in_header(path: Path) -> None:
    """Keep a gzip stream's first bytes only: not even the 348-byte header inflates from them."""
    path.write_bytes(path.read_bytes()[:40])


def _dangling_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("gone.nii.gz"))


def _flip_crc(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # first byte of the CRC32 field; ISIZE, the last 4 bytes, stays right
    path.write_bytes(bytes(raw))


def _set_fields(**fields: object) -> HeaderChange:
    def change(header: Nifti1Header) -> None:
        for key, value in fields.items():
            header[key] = value

    return change


def _gigantic(header: Nifti1Header) -> None:
    header["dim"][1:4] = 2000


def _nan_spacing(header: Nifti1Header) -> None:
    header["pixdim"][1] = np.nan


def _shift_sform(header: Nifti1Header) -> None:
    affine = header.get_sform()
    affine[0, 3] += 0.5
    header.set_sform(affine)


def _nan_sform(header: Nifti1Header) -> None:
    header["srow_x"][3] = np.nan


def _flat_sform(header: Nifti1Header) -> None:
    header["srow_z"][:3] = 0.0


def _shear(header: Nifti1Header) -> None:
    affine = header.get_sform()
    affine[0, 1] += 0.005 * affine[1, 1]
    header.set_sform(affine)


def _qform_off_by_2mm(header: Nifti1Header) -> None:
    affine = header.get_sform()
    affine[2, 3] += 2.0
    header.set_qform(affine, code=1)


def _qform_40mm_away(header: Nifti1Header) -> None:
    """The sform stays the image's; a qform (code 1) 40 mm away is what ITK reads."""
    affine = header.get_sform()
    affine[2, 3] += 40.0
    header.set_qform(affine, code=1)


def _sform_off_qform_at_image(header: Nifti1Header) -> None:
    """The sform 0.5 mm off, as nibabel reads it; a qform (code 1) where the image is, as ITK reads it."""
    header.set_qform(header.get_sform(), code=1)
    _shift_sform(header)


def _columns_longer_than_pixdim(header: Nifti1Header) -> None:
    """pixdim keeps 1.5 mm (ITK's spacing), the sform's columns grow to 1.6 mm (nibabel's)."""
    affine = header.get_sform()
    affine[:3, :3] *= 1.6 / 1.5
    header.set_sform(affine)


def _as_nifti2(path: Path) -> None:
    image = nib.load(path)
    data, header = np.asarray(image.dataobj), image.header
    nib.save(nib.Nifti2Image(data, header.get_best_affine(), dtype=header.get_data_dtype()), path)


def _coarse(grid: Grid) -> Grid:
    return Grid(shape=tuple(max(1, n // 2) for n in grid.shape), spacing=(3.0, 3.0, 3.0), origin=grid.origin)


def _lps(grid: Grid) -> Grid:
    return Grid(grid.shape, grid.spacing, grid.origin, flip=(True, True, False))


def _largest_masks(sample: Sample, spec: ReleaseSpec, case: str, count: int, required: int | None = None) -> list[str]:
    """Up to `count` non-empty masks of the case, largest first; at least `required` (default: count) must exist."""
    sizes = {name: int(np.count_nonzero(_load(sample.root / _mask_path(spec, case, name))[0])) for name in spec.classes}
    largest = sorted((name for name in sizes if sizes[name]), key=lambda name: -sizes[name])[:count]
    if len(largest) < (count if required is None else required):
        raise ValueError(f"{case} has fewer than {count} non-empty masks")
    return largest


def _upper_half(data: np.ndarray) -> np.ndarray:
    """The slices from the middle of the mask's extent up."""
    slices = np.flatnonzero(data.any(axis=(0, 1)))
    upper = np.zeros(data.shape, dtype=bool)
    upper[:, :, slices[len(slices) // 2]:] = True
    return upper


def label_values(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    path = _mask_path(spec, case, _largest_masks(sample, spec, case, 1)[0])
    _edit_voxels(lambda data: np.where(_upper_half(data), data * 2, data).astype(np.uint8))(sample.root / path)
    return [InjectedFault("LABEL_VALUES", case, path)]


def label_overlap(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The fault names the grown mask; the largest one keeps its voxels."""
    largest, grown = (_mask_path(spec, case, name) for name in _largest_masks(sample, spec, case, 2))
    claimed, _ = _load(sample.root / largest)
    taken = claimed.astype(bool) & ~_upper_half(claimed)
    _edit_voxels(lambda data: (data.astype(bool) | taken).astype(np.uint8))(sample.root / grown)
    return [InjectedFault("LABEL_OVERLAP", case, grown)]


def _swap_first(sample: Sample, spec: ReleaseSpec, case: str, pairs: list[tuple[str, str]], reported: int) -> str:
    """Swap the files of the first pair whose masks are both non-empty, as a mix-up in labelling would; the path of
    the pair's member at index `reported`, which the finding names."""
    for pair in pairs:
        paths = [sample.root / _mask_path(spec, case, name) for name in pair]
        if all(name in spec.classes for name in pair) and all(_load(path)[0].any() for path in paths):
            first = paths[0].read_bytes()
            paths[0].write_bytes(paths[1].read_bytes())
            paths[1].write_bytes(first)
            return _mask_path(spec, case, pair[reported])
    raise ValueError(f"{case} has none of these pairs of non-empty masks: {pairs}")


def swapped_sides(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The first non-empty *_left mask and its *_right twin swapped; the left one is reported."""
    pairs = [(name, name.replace("_left", "_right")) for name in spec.classes if "_left" in name]
    return [InjectedFault("LABEL_POSITION", case, _swap_first(sample, spec, case, pairs, 0))]


def swapped_ends(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The highest and the lowest non-empty member of a head-to-feet sequence swapped (vertebrae mixed up far enough
    apart to exceed the anatomy tolerance on a small grid); the lower one's file is reported."""
    for sequence in spec.anatomy.head_to_feet:
        present = [name for name in sequence if _load(sample.root / _mask_path(spec, case, name))[0].any()]
        if len(present) >= 2:
            lower = _swap_first(sample, spec, case, [(present[0], present[-1])], 1)
            return [InjectedFault("LABEL_POSITION", case, lower)]
    raise ValueError(f"{case} has no head-to-feet sequence with two non-empty masks")


def swapped_above(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """A class that must lie above another swapped with it (a heart labelled in the abdomen); the upper is reported."""
    return [InjectedFault("LABEL_POSITION", case, _swap_first(sample, spec, case, list(spec.anatomy.above), 0))]


PADDING_HU = -1024


def _outside_reconstruction_circle(shape: tuple[int, ...]) -> np.ndarray:
    """The corners of each slice that a CT's circular field of view does not reach."""
    x = (np.arange(shape[0]) - (shape[0] - 1) / 2) / (shape[0] / 2)
    y = (np.arange(shape[1]) - (shape[1] - 1) / 2) / (shape[1] / 2)
    corners = x[:, None] ** 2 + y[None, :] ** 2 > 1
    return np.broadcast_to(corners[:, :, None], shape)


def mask_in_padding(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The CT gets padding outside its reconstruction circle and also over the upper half of one mask, which the mask
    keeps: a structure drawn where the image has no data. The mask is the largest one that cannot hold air."""
    exempt = [name for name in spec.classes if any(fnmatch.fnmatch(name, pat) for pat in spec.values.padding_exempt)]
    name = next(n for n in _largest_masks(sample, spec, case, len(spec.classes), required=1) if n not in exempt)
    mask, _ = _load(sample.root / _mask_path(spec, case, name))
    beyond = mask.astype(bool) & _upper_half(mask)
    image = sample.root / case / spec.image
    _edit_voxels(lambda data: np.where(_outside_reconstruction_circle(data.shape) | beyond, PADDING_HU, data)
                 .astype(data.dtype))(image)
    return [InjectedFault("LABEL_IN_PADDING", case, _mask_path(spec, case, name))]


def all_masks_empty(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """Every mask of the case emptied, as the byte-identical empty file the release ships; the fault names the
    folder."""
    paths = [sample.root / case / spec.mask_file(name) for name in spec.classes]
    data, affine = _load(paths[0])
    MaskWriter(data.shape, affine).write(paths[0], np.zeros(data.shape, dtype=np.uint8))
    for path in paths[1:]:
        shutil.copyfile(paths[0], path)
    return [InjectedFault("LABEL_ALL_EMPTY", case, f"{case}/{spec.mask_dir}")]


def _hole_of_minus_9758(data: np.ndarray) -> np.ndarray:
    center = tuple(slice(max(0, n // 2 - 2), n // 2 + 2) for n in data.shape)
    data[center] = -9758
    return data


# Label faults: errors a rule on one file cannot see, made in the masks (and, for mixed tissue, the CT) of a case.


def _mask_arrays(sample: Sample, spec: ReleaseSpec, case: str) -> dict[str, np.ndarray]:
    """The case's non-empty masks as bool arrays, by class."""
    found = {}
    for name in spec.classes:
        data, _ = _load(sample.root / _mask_path(spec, case, name))
        if data.any():
            found[name] = data.astype(bool)
    return found


def _write_mask(sample: Sample, spec: ReleaseSpec, case: str, name: str, mask: np.ndarray) -> str:
    path = _mask_path(spec, case, name)
    _, affine = _load(sample.root / path)
    MaskWriter(mask.shape, affine).write(sample.root / path, mask.astype(np.uint8))
    return path


def _is_whole(mask: np.ndarray) -> bool:
    """Not empty and touching no face of the grid."""
    index = np.argwhere(mask)
    if index.size == 0:
        return False
    return bool(np.all(index.min(axis=0) > 0) and np.all(index.max(axis=0) < np.array(mask.shape) - 1))


def _whole_organ(spec: ReleaseSpec, masks: dict[str, np.ndarray], case: str) -> str:
    """The largest whole mask of a class expected in one piece."""
    ones = [name for name, most in spec.labels.pieces.limits.items() if most == 1 and name in masks]
    whole = sorted((n for n in ones if _is_whole(masks[n]) and not n.startswith(("vertebrae_", "rib_"))),
                   key=lambda n: -int(masks[n].sum()))
    if not whole:
        raise ValueError(f"{case} has no whole mask of a one-piece organ")
    return whole[0]


def _spine(spec: ReleaseSpec) -> list[str]:
    chains = [c for c in spec.labels.chains if c.reference_ml is not None] or spec.labels.chains
    if not chains:
        raise ValueError(f"spec {spec.id} has no chain")
    return chains[0].members


def chain_gap(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The middle one of the members whose neighbours on both sides are non-empty, emptied."""
    masks, members = _mask_arrays(sample, spec, case), _spine(spec)
    inner = [k for k in range(1, len(members) - 1) if all(members[j] in masks for j in (k - 1, k, k + 1))]
    if not inner:
        raise ValueError(f"{case} has no chain member between two others")
    name = members[inner[len(inner) // 2]]
    return [InjectedFault("LABEL_CHAIN", case, _write_mask(sample, spec, case, name, np.zeros_like(masks[name])))]


def chain_merged(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """Two whole neighbouring members labelled as one, the lower's file emptied (which is also a gap); whole members
    on both sides of the pair predict them. The upper member's file is reported."""
    masks, members = _mask_arrays(sample, spec, case), _spine(spec)
    whole = [n in masks and _is_whole(masks[n]) for n in members]
    pairs = [k for k in range(1, len(members) - 2) if all(whole[k - 1:k + 3])]
    if not pairs:
        raise ValueError(f"{case} has no two whole chain members between whole neighbours")
    k = pairs[len(pairs) // 2]
    upper, lower = members[k], members[k + 1]
    _write_mask(sample, spec, case, lower, np.zeros_like(masks[lower]))
    return [InjectedFault("LABEL_CHAIN", case, _write_mask(sample, spec, case, upper, masks[upper] | masks[lower]))]


def _detached(mask: np.ndarray, share: float, gap_mm: float, spacing: float) -> np.ndarray:
    """The mask with a copy of its lowest slices holding `share` of it placed `gap_mm` clear of it and of the grid's
    faces: below it, else above it, else beside it."""
    counts = mask.sum(axis=(0, 1))
    filled = np.flatnonzero(counts)
    cut = filled[0] + int(np.searchsorted(np.cumsum(counts[filled[0]:]), share * mask.sum()))
    piece = np.zeros_like(mask)
    piece[:, :, filled[0]:cut + 1] = mask[:, :, filled[0]:cut + 1]
    gap = max(1, int(np.ceil(gap_mm / spacing)))
    index = np.argwhere(mask)
    low, high = index.min(axis=0), index.max(axis=0)
    piece_index = np.argwhere(piece)
    piece_low, piece_high = piece_index.min(axis=0), piece_index.max(axis=0)
    for axis, direction in ((2, -1), (2, 1), (0, -1), (0, 1)):
        shift = (low[axis] - gap - 1 - piece_high[axis]) if direction < 0 else (high[axis] + gap + 1 - piece_low[axis])
        if 1 <= piece_low[axis] + shift and piece_high[axis] + shift <= mask.shape[axis] - 2:
            made = mask.copy()
            made |= np.roll(piece, shift, axis=axis)
            return made
    raise ValueError("no room beside the mask for a detached piece")


def fragment(share: float, gap_mm: float) -> Injector:
    """A copy of the bottom `share` of the case's largest whole one-piece organ, `gap_mm` away from it."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        masks = _mask_arrays(sample, spec, case)
        name = _whole_organ(spec, masks, case)
        spacing = float(nib.load(sample.root / case / spec.image).header.get_zooms()[2])
        made = _detached(masks[name], share, gap_mm, spacing)
        return [InjectedFault("LABEL_FRAGMENTS", case, _write_mask(sample, spec, case, name, made))]

    return inject


def _crop_case(sample: Sample, spec: ReleaseSpec, case: str, keep: tuple[slice, slice, slice]) -> None:
    """Every file of the case cut to the voxels `keep`, the affine moved so that the kept voxels stay in place."""
    for path in [sample.root / case / spec.image, *(sample.root / case / spec.mask_file(n) for n in spec.classes)]:
        data, affine = _load(path)
        moved = affine.copy()
        moved[:3, 3] += affine[:3, :3] @ [s.start or 0 for s in keep]
        save_nifti(path, np.ascontiguousarray(data[keep]), moved)


def truncated(axis: int) -> Injector:
    """The case's field of view narrowed to end in the middle of its largest whole one-piece organ, along `axis`
    (2: head to feet, the organ's upper half cut away; 0: across, the half towards the grid's far edge)."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        masks = _mask_arrays(sample, spec, case)
        name = _whole_organ(spec, masks, case)
        index = np.flatnonzero(masks[name].any(axis=tuple(a for a in range(3) if a != axis)))
        middle = int(index[len(index) // 2])
        keep = [slice(None)] * 3
        keep[axis] = slice(0, middle + 1)
        _crop_case(sample, spec, case, tuple(keep))
        return [InjectedFault("LABEL_TRUNCATED", case, _mask_path(spec, case, name))]

    return inject


def _hu_groups(spec: ReleaseSpec, masks: dict[str, np.ndarray], test: Callable) -> list[str]:
    """Non-empty masks large enough to be judged whose HU group passes `test`, largest first."""
    found = []
    for name, mask in masks.items():
        grouped = spec.labels.hu.group_of(name)
        if grouped is not None and mask.sum() >= spec.labels.hu.min_voxels and test(grouped[1]):
            found.append(name)
    return sorted(found, key=lambda n: -int(masks[n].sum()))


def _swap_masks(sample: Sample, spec: ReleaseSpec, case: str, first: str, second: str) -> str:
    a, b = (sample.root / _mask_path(spec, case, name) for name in (first, second))
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)
    return _mask_path(spec, case, first)


def mislabel_air(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The largest soft-tissue mask and an air-filled one (a lung lobe, the trachea) swapped: the soft-tissue class
    now labels lung. The soft-tissue file is reported."""
    masks = _mask_arrays(sample, spec, case)
    soft = _hu_groups(spec, masks, lambda g: g.range[0] > -500 and g.range[1] <= 400)
    air = _hu_groups(spec, masks, lambda g: g.range[1] <= -100)
    if not soft or not air:
        raise ValueError(f"{case} has no soft-tissue and air-filled masks to swap")
    return [InjectedFault("LABEL_HU", case, _swap_masks(sample, spec, case, soft[0], air[0]))]


def mislabel_bone(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """A soft-tissue mask and the densest bone mask swapped: the soft-tissue class now labels bone."""
    masks = _mask_arrays(sample, spec, case)
    ct, _ = _load(sample.root / case / spec.image)
    soft = _hu_groups(spec, masks, lambda g: g.range[1] <= 400 and g.range[0] > -500 and g.high == "warning")
    bones = _hu_groups(spec, masks, lambda g: g.range[0] >= 30 and g.high == "info")
    dense = [n for n in bones if float(ct[masks[n]].mean()) > 600] or bones
    if not soft or not dense:
        raise ValueError(f"{case} has no soft-tissue and bone masks to swap")
    densest = max(dense, key=lambda n: float(ct[masks[n]].mean()))
    return [InjectedFault("LABEL_HU", case, _swap_masks(sample, spec, case, soft[0], densest))]


def mixed_tissue(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The CT inside the largest mask of a group with a spread bound alternates, slice by slice, 400 HU above and
    below its own values: a mask drawn over two tissues, its mean unchanged."""
    masks = _mask_arrays(sample, spec, case)
    names = _hu_groups(spec, masks, lambda g: g.sd_max is not None)
    if not names:
        raise ValueError(f"{case} has no mask of a group with a spread bound")
    inside = masks[names[0]]
    sign = np.where(np.arange(inside.shape[2]) % 2 == 0, 400, -400)[None, None, :]

    def change(data: np.ndarray) -> np.ndarray:
        return np.where(inside, data + sign, data).astype(data.dtype)

    _edit_voxels(change)(sample.root / case / spec.image)
    return [InjectedFault("LABEL_HU", case, _mask_path(spec, case, names[0]))]


def _dilated(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one voxel along each axis (6-connected)."""
    grown = mask.copy()
    for axis in range(3):
        grown[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))] |= \
            mask[tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))]
        grown[tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))] |= \
            mask[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))]
    return grown


PREFERRED_ORGANS = ("liver", "spleen", "kidney_right", "kidney_left", "stomach", "heart", "urinary_bladder")


def _preferred_whole(spec: ReleaseSpec, masks: dict[str, np.ndarray], case: str) -> list[str]:
    whole = [n for n in PREFERRED_ORGANS if n in masks and _is_whole(masks[n])]
    if not whole:
        raise ValueError(f"{case} has none of {PREFERRED_ORGANS} whole")
    return whole


def _tripled(mask: np.ndarray) -> np.ndarray | None:
    """The mask grown, voxel layer by layer, to three times its volume; None if it would reach the grid's faces."""
    grown = mask
    while grown.sum() < 3 * mask.sum():
        grown = _dilated(grown)
        if not _is_whole(grown):
            return None
    return grown


def tripled(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """A whole organ grown to three times its volume (into its neighbours: a mask that took theirs), the first of
    PREFERRED_ORGANS that stays clear of the grid's faces."""
    masks = _mask_arrays(sample, spec, case)
    for name in _preferred_whole(spec, masks, case):
        grown = _tripled(masks[name])
        if grown is not None:
            return [InjectedFault("LABEL_OUTLIER", case, _write_mask(sample, spec, case, name, grown))]
    raise ValueError(f"{case}: no organ triples within the grid")


def stretched(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """A whole organ given a one-voxel tail down from its lowest slice, as long again as the organ is tall: its
    head-to-feet extent doubles, its volume hardly changes."""
    masks = _mask_arrays(sample, spec, case)
    name = _preferred_whole(spec, masks, case)[0]
    mask = masks[name].copy()
    filled = np.flatnonzero(mask.any(axis=(0, 1)))
    bottom, height = int(filled[0]), int(filled[-1] - filled[0] + 1)
    i, j = (int(c) for c in np.argwhere(mask[:, :, bottom])[0])
    end = max(1, bottom - height)
    mask[i, j, end:bottom] = True
    return [InjectedFault("LABEL_OUTLIER", case, _write_mask(sample, spec, case, name, mask))]


def _every_case(change: Callable[[np.ndarray], np.ndarray], name: str, every: int = 1) -> Injector:
    """The class's mask changed in every `every`-th case of the sample that contains it: a release-level drift."""
    def inject(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
        if name not in spec.classes:
            raise ValueError(f"spec {spec.id} has no class {name}")
        holding = [c for c in sample.cases if _load(sample.root / _mask_path(spec, c, name))[0].any()]
        for c in holding[::every]:
            mask = _load(sample.root / _mask_path(spec, c, name))[0].astype(bool)
            _write_mask(sample, spec, c, name, change(mask))
        return [InjectedFault("RELEASE_DRIFT", None, None)]

    return inject


def _upper_half_only(mask: np.ndarray) -> np.ndarray:
    return mask & _upper_half(mask)


# The DICOM RescaleIntercept of CT scanners: stored values are HU + 1024.
RESCALE_INTERCEPT = -1024


def _raw_scanner_values(data: np.ndarray) -> np.ndarray:
    """The CT as the scanner stores it before RescaleIntercept -1024 is applied."""
    return (data.astype(np.int32) - RESCALE_INTERCEPT).astype(data.dtype)


def label_map_as_image(sample: Sample, spec: ReleaseSpec, case: str) -> list[InjectedFault]:
    """The CT overwritten with a segmentation: the case's preferred mask, as the CT's type."""
    path = f"{case}/{spec.image}"
    mask = _load(sample.root / _mask_path(spec, case))[0]
    _edit_voxels(lambda data: mask.astype(data.dtype))(sample.root / path)
    return [InjectedFault("IMAGE_NOT_CT", case, path)]


_FAULTS: dict[str, Fault] = {
    "META_MISSING": Fault(meta_missing, "meta.csv deleted"),
    "META_UNREADABLE:encoding": Fault(meta_bad_encoding, "one cell saved as Latin-1 ('ä' as byte 0xE4), not UTF-8"),
    "META_UNREADABLE:separator": Fault(meta_no_separator,
                                       "meta.csv re-saved by a spreadsheet with ',' between columns"),
    "META_UNREADABLE:no_header": Fault(meta_empty, "meta.csv emptied to 0 bytes"),
    "META_UNREADABLE:parse": Fault(meta_unclosed_quote, "a last line that opens a quote and never closes it"),
    "META_UNREADABLE:unreadable": Fault(meta_dangling_link, "meta.csv replaced by a dangling symbolic link"),
    "META_UNREADABLE:too_wide": Fault(meta_too_wide, "2,000 more column names in meta.csv's header line"),
    "META_COLUMNS:missing": Fault(meta_drop_column, "the first column that is neither id nor split dropped"),
    "META_COLUMNS:unknown": Fault(meta_unknown_column, "a column 'comment' the spec does not know added"),
    "META_VALUE:allowed": Fault(_cell("META_VALUE", "gender", "x"), "the case's gender is 'x', not one of m, f"),
    "META_VALUE:type": Fault(_cell("META_VALUE", "age", "abc"), "the case's age is 'abc', not an integer"),
    "META_VALUE:range": Fault(_cell("META_VALUE", "age", "130"), "the case's age is 130, above the column's max"),
    "META_VALUE:pattern": Fault(_cell("META_VALUE", "study_type", "mr abdomen"),
                                "the case's study_type is 'mr abdomen', not starting with 'ct '"),
    "META_VALUE:empty": Fault(_cell("META_VALUE", "split", ""), "the case's split is empty"),
    "META_NORMALIZED": Fault(_cell("META_NORMALIZED", "study_type", "CT Polytrauma "),
                             "the case's study_type is 'CT Polytrauma ', capitals and a trailing space"),
    "META_DUPLICATE_ID": Fault(meta_duplicate_id, "the case's row appears twice"),
    "META_SPLIT_COUNTS:splits": Fault(meta_move_split, "the case moved to another split"),
    "CASE_MISSING": Fault(case_missing, "the case's folder deleted, its row kept"),
    "CASE_UNLISTED": Fault(case_unlisted, "the case's row deleted, its folder kept"),
    "FILE_MISSING:file": Fault(_on_file("FILE_MISSING", "mask", Path.unlink), "the case's liver mask deleted"),
    "FILE_MISSING:folder": Fault(mask_folder_missing, "the case's segmentations/ folder deleted"),
    "FILE_UNEXPECTED:os_junk": Fault(macos_junk, "macOS leftovers: an AppleDouble '._liver.nii.gz' and a '.DS_Store'"),
    "FILE_UNEXPECTED:link": Fault(link_in_case, "a symbolic link 'image.nii.gz' to the case's CT"),
    "FILE_UNEXPECTED:unknown": Fault(stray_copy, "a stray copy 'liver (1).nii.gz'"),
    "FILE_UNEXPECTED:bad_name": Fault(badly_named_file, "a file 'notes_\\xe9.txt' whose name is not UTF-8"),
    "FILE_CORRUPT:size_mismatch": Fault(_on_file("FILE_CORRUPT", "image", _truncate),
                                    "the CT cut in half, as by an interrupted download"),
    "FILE_CORRUPT:empty": Fault(_on_file("FILE_CORRUPT", "mask", lambda path: path.write_bytes(b"")),
                                "a mask of 0 bytes"),
    "FILE_CORRUPT:not_gzip": Fault(_on_file("FILE_CORRUPT", "mask", lambda path: path.write_bytes(_read_stream(path))),
                                   "a mask stored uncompressed under its .nii.gz name"),
    "FILE_CORRUPT:bad_header": Fault(_on_file("FILE_CORRUPT", "mask", _edit_header(_set_fields(sizeof_hdr=0))),
                                     "a mask whose header says sizeof_hdr 0"),
    "FILE_CORRUPT:truncated": Fault(_on_file("FILE_CORRUPT", "mask", _cut_in_header),
                                    "a mask cut after 40 bytes, inside its compressed header"),
    "FILE_CORRUPT:unreadable": Fault(_on_file("FILE_CORRUPT", "mask", _dangling_link),
                                     "a mask replaced by a dangling symbolic link"),
    "FILE_CORRUPT:absurd_size": Fault(_on_file("FILE_CORRUPT", "mask", _edit_header(_gigantic)),
                                      "a mask whose header declares 2000 x 2000 x 2000 voxels"),
    "FILE_CORRUPT:stream": Fault(_on_file("FILE_CORRUPT", "image", _flip_crc),
                              "the CT's gzip CRC32 is wrong, as in v1's s0864: only a full decompression sees it"),
    "GEOM_SHAPE_MISMATCH:size": Fault(_on_file("GEOM_SHAPE_MISMATCH", "mask",
                                               _edit_voxels(lambda data: data[:, :, :-1])),
                                      "a mask one slice shorter than its CT, same affine"),
    "GEOM_SHAPE_MISMATCH:ndim": Fault(_on_file("GEOM_SHAPE_MISMATCH", "mask",
                                               _edit_voxels(lambda data: data[..., None])),
                                      "a mask stored 4-D, (x, y, z, 1), on its CT's grid"),
    "GEOM_AFFINE_MISMATCH:both": Fault(_on_file("GEOM_AFFINE_MISMATCH", "mask", _edit_header(_shift_sform)),
                                       "a mask's sform 0.5 mm off the CT's, as in v1"),
    "GEOM_AFFINE_MISMATCH:itk": Fault(_on_file("GEOM_AFFINE_MISMATCH", "mask", _edit_header(_qform_40mm_away)),
                                      "a mask whose sform is the CT's but whose qform (code 1), which ITK reads, is "
                                      "40 mm away", frozenset({"GEOM_AFFINE_INVALID"})),
    "GEOM_AFFINE_MISMATCH:nibabel": Fault(_on_file("GEOM_AFFINE_MISMATCH", "mask",
                                                   _edit_header(_sform_off_qform_at_image)),
                                          "a mask whose sform is 0.5 mm off but whose qform (code 1), which ITK reads, "
                                          "is the CT's", frozenset({"GEOM_AFFINE_INVALID"})),
    "FILE_VERSION": Fault(_on_file("FILE_VERSION", "mask", _as_nifti2),
                          "a mask saved as NIfTI-2, which ITK cannot open"),
    "GEOM_SPACING:mismatch": Fault(_rewrite_case("GEOM_SPACING", _coarse),
                                   "the case stored at 3 mm, CT and masks alike"),
    # ITK takes a NaN pixdim as 1 mm, nibabel the sform's 1.5: the readers also place the CT apart
    "GEOM_SPACING:not_finite": Fault(_on_file("GEOM_SPACING", "image", _edit_header(_nan_spacing)),
                                     "the CT's pixdim[1] is NaN, its sform valid", frozenset({"GEOM_AFFINE_INVALID"})),
    "GEOM_ORIENTATION": Fault(_rewrite_case("GEOM_ORIENTATION", _lps), "the case stored LPS, CT and masks alike"),
    "GEOM_AFFINE_INVALID:non_finite": Fault(_on_case_headers("GEOM_AFFINE_INVALID", _nan_sform, whole_case=True),
                                            "a NaN translation in the sform of the CT and every mask"),
    "GEOM_AFFINE_INVALID:singular": Fault(_on_case_headers("GEOM_AFFINE_INVALID", _flat_sform, whole_case=True),
                                          "an sform whose third column is zero, in the CT and every mask"),
    "GEOM_AFFINE_INVALID:readers_disagree": Fault(
        _on_case_headers("GEOM_AFFINE_INVALID", _columns_longer_than_pixdim, whole_case=True),
        "pixdim 1.5 mm but sform columns 1.6 mm long in the CT and every mask: ITK and nibabel size the voxels apart"),
    "GEOM_AFFINE_INVALID:not_orthonormal": Fault(_on_case_headers("GEOM_AFFINE_INVALID", _shear, whole_case=True),
                                                 "a small shear in the sform of the CT and every mask"),
    "GEOM_AFFINE_INVALID:sform_qform": Fault(_on_case_headers("GEOM_AFFINE_INVALID", _qform_off_by_2mm,
                                                              whole_case=False),
                                             "the CT's qform (code 1) 2 mm off its sform"),
    # Without either transform readers fall back to a guessed LAS affine, so orientation and mask affines go unjudged.
    "GEOM_AFFINE_INVALID:no_transform": Fault(
        _on_case_headers("GEOM_AFFINE_INVALID", _set_fields(sform_code=0, qform_code=0), whole_case=True),
        "sform and qform codes 0 in the CT and every mask"),
    "GEOM_AFFINE_INVALID:bad_quaternion": Fault(
        _on_case_headers("GEOM_AFFINE_INVALID", _set_fields(sform_code=0, qform_code=1, quatern_b=5, quatern_c=5,
                                                            quatern_d=5), whole_case=False),
        "the CT's only transform is a qform whose quaternion is not a rotation (b = c = d = 5)"),
    "GEOM_AFFINE_INVALID:bad_code": Fault(
        _on_case_headers("GEOM_AFFINE_INVALID", _set_fields(sform_code=-1), whole_case=True),
        "sform_code -1 in the CT and every mask: nibabel uses that sform, ITK ignores it"),
    "IMAGE_DTYPE": Fault(_on_file("IMAGE_DTYPE", "image", _edit_voxels(lambda data: data.astype(np.float32))),
                         "the CT stored as float32"),
    "LABEL_DTYPE:dtype": Fault(_on_file("LABEL_DTYPE", "mask", _edit_voxels(lambda data: data.astype(np.float32))),
                               "a mask stored as float32"),
    "LABEL_DTYPE:scaling": Fault(_on_file("LABEL_DTYPE", "mask",
                                          _edit_header(_set_fields(scl_slope=0.5, scl_inter=0.0))),
                                 "a mask with scl_slope 0.5: a stored 1 loads as 0.5"),
    "LABEL_VALUES": Fault(label_values, "the case's largest mask holds 0, 1 and 2"),
    "LABEL_OVERLAP": Fault(label_overlap, "the second largest mask also covers half of the largest one"),
    "LABEL_IN_PADDING": Fault(mask_in_padding, "half of a mask lies where the CT holds only padding (-1024)"),
    "LABEL_ALL_EMPTY": Fault(all_masks_empty, "every mask of the case empty"),
    "LABEL_POSITION:side": Fault(swapped_sides, "a *_left mask and its *_right twin swapped"),
    "LABEL_POSITION:order": Fault(swapped_ends, "the highest and the lowest vertebra in view swapped"),
    "LABEL_POSITION:above": Fault(swapped_above, "a heart (or another class that lies above) swapped with the liver"),
    "LABEL_CHAIN:gap": Fault(chain_gap, "a vertebra's mask emptied between its neighbours"),
    "LABEL_CHAIN:merged": Fault(chain_merged, "two neighbouring vertebrae labelled as the upper one, the lower empty",
                                population=True),
    "LABEL_FRAGMENTS:share": Fault(fragment(0.15, 20.0), "a copy of an organ's lowest 15% placed 2 cm away from it",
                                   frozenset({"LABEL_OVERLAP"})),
    "LABEL_FRAGMENTS:far": Fault(fragment(0.03, 36.0), "a copy of an organ's lowest 3% placed 3.6 cm away from it",
                                 frozenset({"LABEL_OVERLAP"})),
    "LABEL_FRAGMENTS:minor": Fault(fragment(0.03, 3.0), "a copy of an organ's lowest 3% placed just below it",
                                   frozenset({"LABEL_OVERLAP"})),
    "LABEL_TRUNCATED:slices": Fault(truncated(2), "the case's slices above the middle of an organ cut away",
                                    frozenset({"LABEL_FRAGMENTS"})),
    "LABEL_TRUNCATED:edge": Fault(truncated(0), "the case cut across through the middle of an organ",
                                  frozenset({"LABEL_FRAGMENTS"})),
    "LABEL_HU:low": Fault(mislabel_air, "a soft-tissue mask swapped with a lung lobe's (a lung labelled as liver)",
                          frozenset({"LABEL_POSITION"})),
    "LABEL_HU:high": Fault(mislabel_bone, "a soft-tissue mask swapped with a dense bone's",
                           frozenset({"LABEL_POSITION"})),
    "LABEL_HU:spread": Fault(mixed_tissue, "the CT inside an organ 400 HU above and below its values, slice by slice"),
    "LABEL_OUTLIER:volume": Fault(tripled, "an organ grown to three times its volume", frozenset({"LABEL_OVERLAP"}),
                                  population=True),
    "LABEL_OUTLIER:extent": Fault(stretched, "an organ given a thin tail as long as the organ is tall",
                                  frozenset({"LABEL_OVERLAP"}), population=True),
    "RELEASE_DRIFT:coverage": Fault(_every_case(lambda mask: np.zeros_like(mask), "liver", every=2),
                                    "the liver's mask emptied in every second case that has one", population=True),
    "RELEASE_DRIFT:volume": Fault(_every_case(_upper_half_only, "liver"),
                                  "the liver's mask cut to its upper half in every case", population=True),
    "IMAGE_VALUES": Fault(_on_file("IMAGE_VALUES", "image", _edit_voxels(_hole_of_minus_9758)),
                          "a block of CT voxels at -9758 HU, as a v2 pre-release case had"),
    "IMAGE_NOT_CT:blank": Fault(_on_file("IMAGE_NOT_CT", "image",
                                         _edit_voxels(lambda data: np.full_like(data, PADDING_HU))),
                                "a blank CT: every voxel -1024"),
    "IMAGE_NOT_CT:shifted": Fault(_on_file("IMAGE_NOT_CT", "image", _edit_voxels(_raw_scanner_values)),
                                  "the CT in raw scanner values, its intercept -1024 lost: every tissue 1024 HU too "
                                  "high"),
    "IMAGE_NOT_CT:label_map": Fault(label_map_as_image, "the CT replaced by the case's liver mask (0 and 1, int16)"),
}
# A bare code names its most common subcode.
DEFAULT_SUBCODES = {"META_UNREADABLE": "encoding", "META_COLUMNS": "missing", "META_VALUE": "allowed",
                    "META_SPLIT_COUNTS": "splits", "FILE_MISSING": "file", "FILE_UNEXPECTED": "os_junk",
                    "FILE_CORRUPT": "size_mismatch", "GEOM_SPACING": "mismatch",
                    "GEOM_AFFINE_INVALID": "not_orthonormal", "GEOM_SHAPE_MISMATCH": "size", "IMAGE_NOT_CT": "shifted",
                    "LABEL_DTYPE": "dtype", "LABEL_POSITION": "side", "GEOM_AFFINE_MISMATCH": "both",
                    "LABEL_CHAIN": "gap", "LABEL_FRAGMENTS": "share", "LABEL_TRUNCATED": "slices", "LABEL_HU": "low",
                    "LABEL_OUTLIER": "volume", "RELEASE_DRIFT": "coverage"}
FAULT_NAMES = tuple(_FAULTS)  # one name per fault; FAULTS adds the bare codes
FAULTS: dict[str, Fault] = {**_FAULTS, **{code: _FAULTS[f"{code}:{sub}"] for code, sub in DEFAULT_SUBCODES.items()}}


def fault_subcode(name: str) -> str | None:
    """The subcode of the finding a fault makes: named after the colon, or the code's default."""
    code, _, subcode = name.partition(":")
    return subcode or DEFAULT_SUBCODES.get(code)
