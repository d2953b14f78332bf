"""Scanning a case: one file's failure is that file's, and the case's image and other masks are still scanned."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import without_cut_organs

from qa.checks.registry import judge
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.case import Layout, scan_case
from qa.scan.facts import MetaFacts, Problem, ReleaseFacts
from qa.source.base import MemberReader
from qa.source.fs import FolderSource
from qa.synth.sample import make_sample, save_nifti

SHAPE = (24, 20, 64)  # 64 slices: every vertebra and rib of the phantom has one of its own


class FailingSource(FolderSource):
    """A folder whose reads of one file raise an error no reader foresees: a stand-in for a bug or an odd file."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(root)
        self.failing = path

    def open(self, path: str) -> MemberReader:
        if path == self.failing:
            raise ValueError("something no reader foresaw")
        return super().open(path)


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Path:
    return make_sample(tmp_path_factory.mktemp("case") / "release", v2, cases=1, faults=["LABEL_VALUES"],
                       shape=SHAPE).root


def findings_of(source: FolderSource, spec: ReleaseSpec, mode: str):
    """The case's facts and its findings; meta.csv is left out, its findings with it."""
    case = scan_case(source, "s0000", Layout.of(spec), mode)
    facts = ReleaseFacts(root="/", meta=MetaFacts(path="meta.csv", present=False), root_entries=[], cases=[case])
    return case, [f for f in judge(facts, spec, subset=True).findings if f.code != "META_MISSING"]


@pytest.mark.parametrize("mode", ["quick", "deep"])
@pytest.mark.parametrize("failing", ["s0000/segmentations/liver.nii.gz", "s0000/ct.nii.gz"])
def test_a_file_whose_reading_raises_is_its_own_finding_and_the_rest_is_scanned(
    root: Path, v2: ReleaseSpec, mode: str, failing: str
) -> None:
    case, findings = findings_of(FailingSource(root, failing), v2, mode)
    assert case.internal_error is None
    assert case.failures == {failing: Problem("error", "ValueError: something no reader foresaw")}
    assert [(f.code, f.subcode, f.case, f.path) for f in findings if f.code == "QA_INTERNAL"] == [
        ("QA_INTERNAL", "file", "s0000", failing)]
    assert len(case.files) == len(v2.classes)  # every other file's header was read
    if mode == "deep":
        assert len(case.deep.masks) == len(v2.classes) - (failing != "s0000/ct.nii.gz")
        assert "LABEL_VALUES" in {f.code for f in findings}  # the faulty mask is still measured


def test_an_rgb24_mask_is_label_dtype_and_leaves_the_rest_measured(
    tmp_path: Path, v2: ReleaseSpec
) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=1, shape=SHAPE)
    path = "s0000/segmentations/liver.nii.gz"
    image = nib.load(sample.root / path)
    rgb = np.zeros(image.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = np.asarray(image.dataobj)
    nib.save(nib.Nifti1Image(rgb, image.affine), sample.root / path)
    case, findings = findings_of(FolderSource(sample.root), v2, "deep")
    assert case.failures == {}
    assert [(f.code, f.subcode, f.path) for f in without_cut_organs(findings)] == [("LABEL_DTYPE", "dtype", path)]
    assert case.deep.image is not None and case.deep.streams[path].error is None
    assert sorted(case.deep.masks) == sorted(f"s0000/{v2.mask_file(c)}" for c in v2.classes if c != "liver")


def test_byte_identical_empty_masks_are_inflated_once_and_share_their_facts(
    root: Path, v2: ReleaseSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.scan.case as case_module

    release = tmp_path / "release"
    shutil.copytree(root, release)
    masks = release / "s0000" / "segmentations"
    ct = nib.load(release / "s0000" / "ct.nii.gz")
    save_nifti(masks / "spleen.nii.gz", np.zeros(ct.shape, dtype=np.uint8), ct.affine)
    emptied = ["spleen.nii.gz", "liver.nii.gz", "stomach.nii.gz", "aorta.nii.gz"]
    for name in emptied[1:]:
        shutil.copyfile(masks / emptied[0], masks / name)
    inflated: list[int] = []

    def counting(raw: bytes, expected: int):
        inflated.append(len(raw))
        return real(raw, expected)

    real = case_module.inflate
    monkeypatch.setattr(case_module, "inflate", counting)
    case = scan_case(FolderSource(release), "s0000", Layout.of(v2), "deep")
    distinct = {path.read_bytes() for path in masks.iterdir()}
    assert len(inflated) == 1 + len(distinct)  # the image, then each distinct mask once
    shared = [(case.deep.masks[f"s0000/segmentations/{name}"], case.deep.streams[f"s0000/segmentations/{name}"])
              for name in emptied]
    assert shared[0][0].voxels == 0 and all(facts == shared[0] for facts in shared)
