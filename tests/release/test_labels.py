"""Label errors that rules on one file cannot see, made on the real example case: a chain gap, a stray fragment, a
cut organ, a mislabel by its HU; and the real case itself, which must get no warning from these checks."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.finding import Finding
from qa.rules.spec import load_spec

V2 = load_spec("totalsegmentator-v2")
LABEL_CODES = {"LABEL_CHAIN", "LABEL_FRAGMENTS", "LABEL_TRUNCATED", "LABEL_HU", "LABEL_OUTLIER", "RELEASE_DRIFT"}


def check(root: Path) -> Report:
    return run_check(root, V2, "test", mode="deep", jobs=1, subset=True)


def mask(name: str) -> str:
    return f"s0000/segmentations/{name}.nii.gz"


def findings(report: Report, code: str, severity: str | None = None) -> list[Finding]:
    return [f for f in report.findings if f.code == code and (severity is None or f.severity == severity)]


def edit_mask(root: Path, name: str, edit) -> None:
    """Change a mask's voxels and save it with its own header, as a converter would."""
    image = nib.load(root / mask(name))
    data = np.asarray(image.dataobj).copy()
    edit(data)
    nib.save(nib.Nifti1Image(data, image.affine, image.header), root / mask(name))


def test_real_example_gets_no_warning_from_the_label_checks(example_root: Path) -> None:
    report = check(example_root)
    assert [f for f in report.findings if f.code in LABEL_CODES and f.severity != "info"] == []


def test_real_example_organs_cut_by_its_30_slices_are_label_truncated(example_root: Path) -> None:
    truncated = {f.path: f for f in findings(check(example_root), "LABEL_TRUNCATED")}
    assert (truncated[mask("liver")].case, truncated[mask("liver")].subcode) == ("s0000", "slices")
    assert truncated[mask("liver")].details["faces"] == ["inferior", "superior"]
    assert mask("gallbladder") not in truncated and mask("vertebrae_L1") not in truncated


def test_emptied_vertebra_between_its_neighbours_is_label_chain_gap(example_copy) -> None:
    root = example_copy("s0000")
    edit_mask(root, "vertebrae_T12", lambda data: data.fill(0))
    [found] = findings(check(root), "LABEL_CHAIN")
    assert (found.case, found.path, found.subcode) == ("s0000", mask("vertebrae_T12"), "gap")
    assert (found.details["above"], found.details["below"]) == ("vertebrae_T11", "vertebrae_L1")


def test_copy_of_part_of_the_gallbladder_above_it_is_label_fragments(example_copy) -> None:
    root = example_copy("s0000")

    def stray(data: np.ndarray) -> None:
        # the gallbladder fills slices 1 to 13 of 30 (3 mm): its two fullest, 6 and 7, copied to 19 and 20
        data[:, :, 19:21] = data[:, :, 6:8]

    edit_mask(root, "gallbladder", stray)
    [found] = findings(check(root), "LABEL_FRAGMENTS")
    assert (found.case, found.path, found.severity) == ("s0000", mask("gallbladder"), "warning")
    assert found.subcode == "share" and found.details["pieces"] == 2


def test_liver_and_a_lung_lobe_swapped_are_label_hu_on_both(example_copy) -> None:
    root = example_copy("s0000")
    liver, lobe = root / mask("liver"), root / mask("lung_lower_lobe_right")
    liver_bytes = liver.read_bytes()
    liver.write_bytes(lobe.read_bytes())
    lobe.write_bytes(liver_bytes)
    found = {f.path: f for f in findings(check(root), "LABEL_HU")}
    assert (found[mask("liver")].case, found[mask("liver")].subcode) == ("s0000", "low")
    assert found[mask("liver")].details["mean_hu"] < -700
    assert found[mask("lung_lower_lobe_right")].subcode == "high"
