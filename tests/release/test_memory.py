"""Memory follows the budget, not the headers: hostile declared sizes stay under --max-memory (peak resident memory
of every process, watched from outside), what does not fit whole is streamed, and what cannot be measured within
the budget is a QA_PARTIAL finding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from peaks import PeakSampler
from support import report_data, write_zeros_nifti

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.scan.memory import LEANEST, MIB, CaseSize, cost
from qa.scan.nifti import read_file_facts
from qa.source.fs import FolderSource

V2 = load_spec("totalsegmentator-v2")
AFFINE = np.diag([1.5, 1.5, 1.5, 1.0])
ONES = 7  # the liver: the first voxels of the grid


def big_release(root: Path, cases: list[str], shape: tuple[int, int, int], garbage_after: int | None = None,
                masks: bool = True) -> Path:
    """Cases on one large grid, written in milliseconds: a CT of zeros (int16), a liver of ONES voxels, an empty
    spleen and aorta (the same file); listed in meta.csv."""
    header = "image_id;age;gender;institute;study_type;split;manufacturer;scanner_model;kvp;pathology;" \
             "pathology_location"
    rows = [f"{case};50;f;A;ct abdomen;train;siemens;somatom;120;;" for case in cases]
    root.mkdir(parents=True)
    (root / "meta.csv").write_text("\ufeff" + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    for case in cases:
        seg = root / case / "segmentations"
        seg.mkdir(parents=True)
        write_zeros_nifti(root / case / "ct.nii.gz", shape, "int16", AFFINE, garbage_after=garbage_after)
        if masks:
            write_zeros_nifti(seg / "liver.nii.gz", shape, "uint8", AFFINE, ones=ONES)
            write_zeros_nifti(seg / "spleen.nii.gz", shape, "uint8", AFFINE)
            os.link(seg / "spleen.nii.gz", seg / "aorta.nii.gz")
    return root


def size_of(root: Path, case: str) -> CaseSize:
    source = FolderSource(root)
    image = read_file_facts(source, f"{case}/ct.nii.gz")
    masks = [read_file_facts(source, f"{case}/segmentations/{name}.nii.gz") for name in ("aorta", "liver", "spleen")]
    return CaseSize(image.size, image.header.stream_bytes, int(np.prod(image.header.shape)), len(masks),
                    max(m.size for m in masks), max(m.header.stream_bytes for m in masks))


def partial(report: Report) -> set[tuple[str | None, str | None, str | None]]:
    return {(f.subcode, f.case, f.path) for f in report.findings if f.code == "QA_PARTIAL"}


@pytest.fixture(scope="module")
def grid_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_release(tmp_path_factory.mktemp("memory") / "release", ["s0000"], (256, 256, 256))


@pytest.fixture(scope="module")
def in_full(grid_case: Path) -> Report:
    return run_check(grid_case, V2, "test", mode="deep", jobs=1, subset=True)


def test_a_case_within_the_budget_is_measured_in_full(in_full: Report) -> None:
    assert partial(in_full) == set()
    liver = in_full.cases[0].labels["liver"]
    assert liver.voxels == ONES


def test_a_budget_without_room_for_the_image_skips_padding_and_says_so(grid_case: Path, in_full: Report) -> None:
    size = size_of(grid_case, "s0000")
    budget = cost(size, False, True, False)
    assert budget < cost(size, True, True, False)
    report = run_check(grid_case, V2, "test", mode="deep", jobs=1, subset=True, max_memory=budget)
    assert partial(report) == {("padding", "s0000", "s0000")}
    [finding] = [f for f in report.findings if f.code == "QA_PARTIAL"]
    assert finding.severity == "warning" and "--max-memory" in finding.message
    assert report.cases[0].image_stats == in_full.cases[0].image_stats
    assert report.cases[0].labels["liver"].voxels == ONES
    assert report.cases[0].labels["liver"].mean_hu is None


def test_the_leanest_budget_streams_everything_and_skips_overlaps_and_pieces_too(
    grid_case: Path, in_full: Report
) -> None:
    report = run_check(grid_case, V2, "test", mode="deep", jobs=1, subset=True, max_memory=LEANEST)
    assert partial(report) == {("padding", "s0000", "s0000"), ("overlaps", "s0000", "s0000"),
                               ("pieces", "s0000", "s0000/segmentations/liver.nii.gz")}
    assert report.cases[0].image_stats == in_full.cases[0].image_stats
    full, lean = in_full.cases[0].labels["liver"], report.cases[0].labels["liver"]
    assert (lean.voxels, lean.centroid_mm) == (full.voxels, full.centroid_mm)


def test_a_mask_whose_voxel_index_does_not_fit_has_its_overlaps_and_pieces_skipped(tmp_path: Path) -> None:
    root = big_release(tmp_path / "release", ["s0000"], (256, 256, 256))
    liver = root / "s0000/segmentations/liver.nii.gz"
    write_zeros_nifti(liver, (256, 256, 256), "uint8", AFFINE, ones=4 << 20)  # 32 MiB of indices
    size = size_of(root, "s0000")
    report = run_check(root, V2, "test", mode="deep", jobs=1, subset=True,
                       max_memory=cost(size, True, True, True))
    assert partial(report) == {("overlaps", "s0000", "s0000/segmentations/liver.nii.gz"),
                               ("pieces", "s0000", "s0000/segmentations/liver.nii.gz")}
    [finding] = [f for f in report.findings if f.code == "QA_PARTIAL" and f.subcode == "overlaps"]
    assert finding.class_name == "liver"
    assert report.cases[0].labels["liver"].voxels == 4 << 20


def check_watched(root: Path, out: Path, *options: str) -> tuple[subprocess.CompletedProcess, PeakSampler]:
    """`tsqa check --jobs 2` in a process group of its own, the peak memory of its processes watched from outside."""
    command = [sys.executable, "-P", "-m", "qa", "check", str(root), "--spec", "totalsegmentator-v2", "--subset",
               "--jobs", "2", "--quiet", "--out", str(out), *options]
    run = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE, text=True)
    with PeakSampler(run.pid) as sampler:
        _, stderr = run.communicate(timeout=300)
    return subprocess.CompletedProcess(command, run.returncode, "", stderr), sampler


def test_ct_declaring_1000_cubed_with_garbage_after_a_few_megabytes_stays_under_1_gib(tmp_path: Path) -> None:
    """Two 2 GB CTs (by their headers and trailers) in 4 kB of deflate data and random bytes, with two jobs."""
    root = big_release(tmp_path / "release", ["s0000", "s0001"], (1000, 1000, 1000), garbage_after=4096, masks=False)
    done, sampler = check_watched(root, tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    report = report_data(tmp_path / "out/report.json")
    corrupt = {(f["case"], f["path"], f["subcode"]) for f in report["findings"] if f["code"] == "FILE_CORRUPT"}
    assert corrupt == {("s0000", "s0000/ct.nii.gz", "stream"), ("s0001", "s0001/ct.nii.gz", "stream")}
    assert len(sampler.peaks) >= 4  # the main process, the fork server and its workers were all watched
    assert sampler.largest_mib() < 1024


def test_volumes_larger_than_the_budget_are_streamed_and_every_process_stays_under_it(tmp_path: Path) -> None:
    """Two cases of 600^3 voxels: a CT of 432 MB, masks of 216 MB (valid streams of zeros), under --max-memory 320M,
    with two jobs. Inflating one CT whole would need more than the budget."""
    root = big_release(tmp_path / "release", ["s0000", "s0001"], (600, 600, 600))
    done, sampler = check_watched(root, tmp_path / "out", "--max-memory", "320M")
    assert "Traceback" not in done.stderr
    report = report_data(tmp_path / "out/report.json")
    found = {(f["code"], f["subcode"], f["case"]) for f in report["findings"] if f["code"].startswith("QA_")}
    assert found == {("QA_PARTIAL", what, case) for what in ("overlaps", "padding") for case in ("s0000", "s0001")}
    assert [c["labels"]["liver"]["voxels"] for c in report["cases"]] == [ONES, ONES]
    assert sampler.largest_mib() < 320
    assert 600**3 * 2 / MIB > 320


def test_an_ordinary_case_of_12_million_voxels_is_measured_in_full_under_the_defaults(tmp_path: Path) -> None:
    shape = (230, 230, 230)  # 12.2 M voxels, a median real CT's
    root = big_release(tmp_path / "release", ["s0000", "s0001"], shape)
    box = 230 * 230 * 74  # the liver's bounding box: 3.9 M voxels, as a real liver's on such a grid
    for case in ("s0000", "s0001"):
        write_zeros_nifti(root / case / "segmentations/liver.nii.gz", shape, "uint8", AFFINE, ones=box)
    report = run_check(root, V2, "test", mode="deep", jobs=2, subset=True)
    assert partial(report) == set()
    assert [c.labels["liver"].pieces for c in report.cases] == [1, 1]
