"""A mask stored 4-D, (x, y, z, 1), on real files: GEOM_SHAPE_MISMATCH:ndim in quick and in deep mode, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.app.pipeline import run_check
from qa.rules.codes import SEVERITY_RANK
from qa.rules.spec import load_spec
from qa.synth.sample import make_sample


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_a_4d_mask_is_geom_shape_mismatch_ndim_in_either_mode(tmp_path: Path, mode: str) -> None:
    spec = load_spec("totalsegmentator-v2")
    # on the default grid: on the smallest, neighbouring vertebrae lie closer than the anatomy tolerance
    sample = make_sample(tmp_path / "release", spec, cases=1, faults=["GEOM_SHAPE_MISMATCH:ndim"])
    [injected] = sample.faults
    report = run_check(sample.root, spec, "test", mode=mode, jobs=1, subset=True)
    serious = [f for f in report.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["warning"]]
    assert [(f.code, f.subcode, f.case, f.path) for f in serious] == [
        ("GEOM_SHAPE_MISMATCH", "ndim", injected.case, injected.path)]
    assert serious[0].details["shape"][3:] == [1]
