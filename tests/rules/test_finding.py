"""Finding identity: the fingerprint names what is wrong and where, never what was measured or where the release is."""

from __future__ import annotations

import shutil
from pathlib import Path

from qa.app.pipeline import run_check
from qa.rules.finding import fingerprint
from qa.rules.spec import load_spec
from qa.synth.sample import make_sample

SPEC = "totalsegmentator-v2"


def test_the_fingerprint_is_a_stable_short_hash() -> None:
    first = fingerprint("LABEL_OVERLAP", None, "s0001", "s0001/segmentations/liver.nii.gz", "liver", "spleen")
    assert first == fingerprint("LABEL_OVERLAP", None, "s0001", "s0001/segmentations/liver.nii.gz", "liver", "spleen")
    assert len(first) == 16 and int(first, 16) >= 0


def test_each_part_of_the_identity_changes_the_fingerprint() -> None:
    parts = ["FILE_CORRUPT", "stream", "s0001", "s0001/ct.nii.gz", None, None]
    base = fingerprint(*parts)
    for k, other in enumerate(["FILE_MISSING", "truncated", "s0002", "s0002/ct.nii.gz", "liver", "age"]):
        assert fingerprint(*parts[:k], other, *parts[k + 1:]) != base


def test_a_name_that_is_not_valid_utf8_still_has_a_fingerprint() -> None:
    assert len(fingerprint("FILE_UNEXPECTED", "unknown", "s0001", "s0001/notes_\udce9.txt", None)) == 16


def test_the_same_release_at_another_path_gives_the_same_fingerprints(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    sample = make_sample(tmp_path / "a", spec, cases=2, faults=["GEOM_AFFINE_MISMATCH", "META_VALUE", "LABEL_OVERLAP"])
    shutil.copytree(sample.root, tmp_path / "b", symlinks=True)
    first = run_check(tmp_path / "a", spec, "test", subset=True)
    second = run_check(tmp_path / "b", spec, "test", subset=True, jobs=2)
    assert first.release != second.release
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in second.findings]
    assert len({f.fingerprint for f in first.findings}) == len(first.findings)
