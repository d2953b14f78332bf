"""The sample generator's promises: the spec's layout, binary disjoint masks on the CT's grid, anatomy where it belongs,
meta.csv as the release writes it, and the same bytes for the same seed."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qa.checks.table import read_table, validate
from qa.rules.spec import ReleaseSpec, builtin_spec_names, load_spec
from qa.synth.phantom import VERTEBRAE
from qa.synth.sample import DEFAULT_SHAPE, FAULTS, Sample, make_sample, split_values

SMALL = (24, 20, 32)
GRID_FIELDS = {"dim", "pixdim", "srow_x", "srow_y", "srow_z", "qoffset_x", "qoffset_y", "qoffset_z",
               "quatern_b", "quatern_c", "quatern_d"}


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path_factory.mktemp("sample") / "release", v2, cases=3, seed=0)


@pytest.fixture(scope="module")
def sample_masks(sample: Sample, v2: ReleaseSpec) -> dict[str, dict[str, np.ndarray]]:
    """The module sample's mask arrays by case and class, loaded once."""
    return {case: masks(sample.root, v2, case) for case in sample.cases}


@pytest.fixture(scope="module")
def lps_sample(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path_factory.mktemp("lps") / "release", v2, cases=1, faults=["GEOM_ORIENTATION"])


def meta_rows(root: Path, spec: ReleaseSpec) -> list[dict[str, str]]:
    text = (root / spec.meta.file).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def case_of_study(sample: Sample, spec: ReleaseSpec, study_type: str) -> str:
    return next(row["image_id"] for row in meta_rows(sample.root, spec) if row["study_type"] == study_type)


def load(path: Path) -> nib.Nifti1Image:
    return nib.load(path)


def masks(root: Path, spec: ReleaseSpec, case: str) -> dict[str, np.ndarray]:
    return {name: np.asarray(load(root / case / spec.mask_file(name)).dataobj) for name in spec.classes}


def world_centroids(root: Path, spec: ReleaseSpec, case: str,
                    found: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Each non-empty mask's centroid in world RAS millimetres."""
    affine = load(root / case / spec.image).affine
    found = masks(root, spec, case) if found is None else found
    return {name: (affine @ [*np.argwhere(data).mean(axis=0), 1.0])[:3] for name, data in found.items() if data.any()}


def release_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("spec_name", builtin_spec_names())
def test_layout_is_exactly_the_specs(tmp_path: Path, spec_name: str) -> None:
    spec = load_spec(spec_name)
    made = make_sample(tmp_path / "release", spec, cases=2, shape=SMALL)
    expected = {spec.meta.file} | {f"{case}/{spec.image}" for case in made.cases} | {
        f"{case}/{spec.mask_file(name)}" for case in made.cases for name in spec.classes}
    assert release_files(made.root) == expected


def test_masks_are_binary_uint8(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    for case in sample.cases:
        for name in v2.classes:
            assert load(sample.root / case / v2.mask_file(name)).get_data_dtype() == np.uint8, f"{case}/{name}"
            assert set(np.unique(sample_masks[case][name])) <= {0, 1}, f"{case}/{name}"


def test_masks_lie_on_the_ct_grid(sample: Sample, v2: ReleaseSpec) -> None:
    for case in sample.cases:
        ct = load(sample.root / case / v2.image)
        for name in v2.classes:
            mask = load(sample.root / case / v2.mask_file(name))
            assert mask.shape == ct.shape and np.array_equal(mask.affine, ct.affine), f"{case}/{name}"


def test_no_two_masks_share_a_voxel(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    for case in sample.cases:
        stacked = sum(data.astype(np.int32) for data in sample_masks[case].values())
        assert stacked.max() == 1, case


def test_empty_masks_are_byte_identical_files(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    case = case_of_study(sample, v2, "ct thorax-abdomen-pelvis")
    empty = [name for name, data in sample_masks[case].items() if not data.any()]
    digests = {hashlib.md5((sample.root / case / v2.mask_file(name)).read_bytes()).hexdigest() for name in empty}
    assert empty and len(digests) == 1


def test_the_field_of_view_decides_which_classes_are_empty(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    whole_body = sample_masks[case_of_study(sample, v2, "ct polytrauma")]
    trunk = sample_masks[case_of_study(sample, v2, "ct thorax-abdomen-pelvis")]
    assert sum(data.any() for data in whole_body.values()) > 0.8 * len(v2.classes)
    assert whole_body["brain"].any() and not trunk["brain"].any()


@pytest.mark.parametrize("stored", ["RAS", "LPS"])
def test_left_and_right_classes_lie_on_their_side_in_world_coordinates(
    sample: Sample, sample_masks: dict, lps_sample: Sample, v2: ReleaseSpec, stored: str
) -> None:
    made = sample if stored == "RAS" else lps_sample
    for case in made.cases:
        centroids = world_centroids(made.root, v2, case, sample_masks[case] if stored == "RAS" else None)
        pairs = [(name, name.replace("left", "right")) for name in centroids
                 if "left" in name and name.replace("left", "right") in centroids]
        assert len(pairs) >= 20, case
        for left, right in pairs:
            assert centroids[right][0] > centroids[left][0], f"{case}: {right} is not right of {left}"


def test_unpaired_organs_lie_on_their_side_of_the_spinal_cord(
    sample: Sample, sample_masks: dict, v2: ReleaseSpec
) -> None:
    case = case_of_study(sample, v2, "ct polytrauma")
    centroids = world_centroids(sample.root, v2, case, sample_masks[case])
    midline = centroids["spinal_cord"][0]
    for name in ("liver", "gallbladder", "inferior_vena_cava"):
        assert centroids[name][0] > midline, name
    for name in ("spleen", "stomach", "aorta", "heart"):
        assert centroids[name][0] < midline, name


def test_structures_are_stacked_from_head_to_pelvis(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    case = case_of_study(sample, v2, "ct polytrauma")
    centroids = world_centroids(sample.root, v2, case, sample_masks[case])
    heights = [centroids[name][2] for name in ("brain", "thyroid_gland", "heart", "liver", "kidney_left",
                                               "urinary_bladder",
                                               "femur_left")]
    assert heights == sorted(heights, reverse=True)


@pytest.mark.parametrize("spec_name", ["totalsegmentator-v2", "totalsegmentator-v3"])
def test_vertebrae_are_ordered_head_to_feet(tmp_path: Path, spec_name: str) -> None:
    spec = load_spec(spec_name)
    made = make_sample(tmp_path / "release", spec, cases=1, seed=1)  # seed 1: a thorax-abdomen-pelvis case
    centroids = world_centroids(made.root, spec, made.cases[0])
    order = [f"vertebrae_{name}" for name in VERTEBRAE if f"vertebrae_{name}" in centroids]
    assert len(order) >= 15
    heights = [centroids[name][2] for name in order]
    assert all(upper > lower for upper, lower in zip(heights, heights[1:]))


def test_ct_shows_tissues_at_their_hounsfield_units(sample: Sample, sample_masks: dict, v2: ReleaseSpec) -> None:
    case = case_of_study(sample, v2, "ct polytrauma")
    ct = np.asarray(load(sample.root / case / v2.image).dataobj)
    found = sample_masks[case]

    def mean_hu(*names: str) -> float:
        return float(ct[np.logical_or.reduce([found[n] > 0 for n in names])].mean())

    assert ct.dtype == np.int16
    assert -1010 < float(ct[0, 0, :].mean()) < -990  # air outside the body
    assert -870 < mean_hu("lung_upper_lobe_left", "lung_lower_lobe_right") < -830
    assert 400 <= mean_hu("vertebrae_T10", "femur_left", "skull") <= 1000
    assert 30 <= mean_hu("liver", "kidney_left", "spleen") <= 60
    body = ct[ct > -500]
    assert -150 < float(np.percentile(body, 10)) < -50  # subcutaneous fat


def test_ct_header_is_written_like_the_release(sample: Sample, v2: ReleaseSpec, example_root: Path) -> None:
    real_path = example_root / "s0000" / "ct.nii.gz"
    made_path = sample.root / sample.cases[0] / v2.image
    real, made = load(real_path).header, load(made_path).header
    differing = {key for key in real.keys()
                 if not np.array_equal(np.asarray(real[key]), np.asarray(made[key]),
                                       equal_nan=real[key].dtype.kind == "f")}
    assert differing <= GRID_FIELDS
    assert (int(made["sform_code"]), int(made["qform_code"])) == (2, 0)
    assert made_path.read_bytes()[:10] == real_path.read_bytes()[:10]  # gzip header: no name, mtime 0, level-1 flag


def test_masks_are_written_byte_for_byte_as_nibabel_writes_them(
    sample: Sample, v2: ReleaseSpec, tmp_path: Path
) -> None:
    case = case_of_study(sample, v2, "ct polytrauma")
    for name in ("liver", "brain", "vertebrae_L1", "prostate"):
        path = sample.root / case / v2.mask_file(name)
        image = load(path)
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine), tmp_path / "resaved.nii.gz")
        assert path.read_bytes() == (tmp_path / "resaved.nii.gz").read_bytes(), name


def test_ct_sits_on_the_specs_spacing_in_ras(sample: Sample, v2: ReleaseSpec) -> None:
    image = load(sample.root / sample.cases[0] / v2.image)
    assert image.header.get_zooms() == tuple(v2.geometry.spacing)
    assert nib.aff2axcodes(image.affine) == tuple(v2.geometry.axcodes)
    assert image.shape == DEFAULT_SHAPE


def test_meta_csv_starts_with_a_bom_and_separates_the_specs_columns_with_semicolons(
    sample: Sample, v2: ReleaseSpec
) -> None:
    raw = (sample.root / v2.meta.file).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw[3:].decode("utf-8").split("\n", 1)[0] == ";".join(v2.meta.columns)


@pytest.mark.parametrize("spec_name", builtin_spec_names())
def test_meta_values_pass_every_column_rule(tmp_path: Path, spec_name: str) -> None:
    spec = load_spec(spec_name)
    made = make_sample(tmp_path / "release", spec, cases=4, shape=SMALL)
    table = read_table((made.root / spec.meta.file).read_bytes(), spec.meta)
    assert validate(table, spec.meta) == []
    assert table.normalized == []


def test_meta_lists_every_case_once_in_the_specs_splits(sample: Sample, v2: ReleaseSpec) -> None:
    rows = meta_rows(sample.root, v2)
    assert [row["image_id"] for row in rows] == sample.cases
    assert {row["split"] for row in rows} <= set(split_values(v2))
    assert {row["image_id"]: row["split"] for row in rows} == sample.splits


def test_same_seed_writes_identical_bytes(tmp_path: Path, v2: ReleaseSpec) -> None:
    first = make_sample(tmp_path / "a", v2, cases=2, seed=7, shape=SMALL)
    second = make_sample(tmp_path / "b", v2, cases=2, seed=7, shape=SMALL)
    files = release_files(first.root)
    assert files == release_files(second.root)
    assert all((first.root / f).read_bytes() == (second.root / f).read_bytes() for f in files)


def test_another_seed_writes_another_sample(tmp_path: Path, v2: ReleaseSpec) -> None:
    first = make_sample(tmp_path / "a", v2, cases=1, seed=7, shape=SMALL)
    second = make_sample(tmp_path / "b", v2, cases=1, seed=8, shape=SMALL)
    ct = f"{first.cases[0]}/{v2.image}"
    assert (first.root / ct).read_bytes() != (second.root / ct).read_bytes()


def test_a_sample_is_never_written_into_a_folder_with_files(tmp_path: Path, v2: ReleaseSpec) -> None:
    (tmp_path / "keep.txt").write_text("data")
    with pytest.raises(FileExistsError):
        make_sample(tmp_path, v2, cases=1, shape=SMALL)
    assert release_files(tmp_path) == {"keep.txt"}


def test_every_fault_name_is_a_code_with_an_optional_variant() -> None:
    from qa.rules.codes import CODES

    deep = {"LABEL_VALUES", "LABEL_OVERLAP", "LABEL_IN_PADDING", "LABEL_ALL_EMPTY", "LABEL_POSITION", "IMAGE_VALUES"}
    assert {name.split(":")[0] for name in FAULTS} <= set(CODES) | deep


def test_spacing_fault_stores_ct_and_masks_at_3_mm_on_one_grid(tmp_path: Path, v2: ReleaseSpec) -> None:
    made = make_sample(tmp_path / "release", v2, cases=1, faults=["GEOM_SPACING"], shape=SMALL)
    case = made.cases[0]
    ct = load(made.root / case / v2.image)
    assert ct.header.get_zooms() == (3.0, 3.0, 3.0)
    for name in v2.classes:
        mask = load(made.root / case / v2.mask_file(name))
        assert mask.shape == ct.shape and np.array_equal(mask.affine, ct.affine), name


def test_label_values_fault_writes_a_mask_holding_0_1_and_2(tmp_path: Path, v2: ReleaseSpec) -> None:
    made = make_sample(tmp_path / "release", v2, cases=2, faults=["LABEL_VALUES"], shape=SMALL)
    (fault,) = made.faults
    image = load(made.root / fault.path)
    assert fault.case == made.cases[-1]
    assert image.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(image.dataobj))) == {0, 1, 2}


def test_label_overlap_fault_makes_two_non_empty_masks_share_voxels(tmp_path: Path, v2: ReleaseSpec) -> None:
    made = make_sample(tmp_path / "release", v2, cases=2, faults=["LABEL_OVERLAP"], shape=SMALL)
    (fault,) = made.faults
    found = masks(made.root, v2, fault.case)
    grown = found[fault.path.rsplit("/", 1)[-1].removesuffix(v2.mask_suffix)]
    shared = [name for name, data in found.items() if data is not grown and (data & grown).any()]
    assert len(shared) == 1
    assert set(np.unique(grown)) == {0, 1}


def test_image_values_fault_puts_ct_voxels_at_minus_9758_hu(tmp_path: Path, v2: ReleaseSpec) -> None:
    made = make_sample(tmp_path / "release", v2, cases=2, faults=["IMAGE_VALUES"], shape=SMALL)
    (fault,) = made.faults
    image = load(made.root / fault.path)
    data = np.asarray(image.dataobj)
    assert fault.path == f"{fault.case}/{v2.image}"
    assert image.get_data_dtype() == np.int16
    assert data.min() == -9758 and int((data == -9758).sum()) > 0
    assert gzip.decompress((made.root / fault.path).read_bytes())  # still a valid stream


def test_all_empty_fault_leaves_every_mask_of_the_case_empty_and_the_ct_intact(tmp_path: Path, v2: ReleaseSpec) -> None:
    made = make_sample(tmp_path / "release", v2, cases=2, faults=["LABEL_ALL_EMPTY"], shape=SMALL)
    (fault,) = made.faults
    assert fault.path == f"{fault.case}/{v2.mask_dir}"
    assert not any(data.any() for data in masks(made.root, v2, fault.case).values())
    assert len({(made.root / fault.case / v2.mask_file(name)).read_bytes() for name in v2.classes}) == 1
    assert np.asarray(load(made.root / fault.case / v2.image).dataobj).max() > 0
    assert any(data.any() for data in masks(made.root, v2, made.cases[0]).values())


def test_padding_fault_pads_the_ct_corners_and_half_of_one_mask_which_stays_whole(
    tmp_path: Path, v2: ReleaseSpec
) -> None:
    clean = make_sample(tmp_path / "clean", v2, cases=2, shape=SMALL)
    made = make_sample(tmp_path / "release", v2, cases=2, faults=["LABEL_IN_PADDING"], shape=SMALL)
    (fault,) = made.faults
    ct = np.asarray(load(made.root / fault.case / v2.image).dataobj)
    mask = np.asarray(load(made.root / fault.path).dataobj).astype(bool)
    assert (made.root / fault.path).read_bytes() == (clean.root / fault.path).read_bytes()
    assert ct.min() == -1024 and np.count_nonzero(ct == -1024) >= 0.01 * ct.size
    assert 0.3 < np.count_nonzero(ct[mask] == -1024) / np.count_nonzero(mask) < 0.7
    assert ct[0, 0, 0] == -1024 and ct[ct.shape[0] // 2, ct.shape[1] // 2, 0] > -1024
