"""The label checks' precision on a synthetic population (natural variation of body and organ sizes, organ places,
fields of view, sex, age and contrast phase): a clean population gets no warning from them, and each kind of label
error injected into it is found. benchmarks/precision.py measures the same on hundreds of cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.spec import ReleaseSpec, load_spec
from qa.synth.population import make_population, population_spec
from qa.synth.sample import Sample, inject_faults

CASES = 40
LABEL_CODES = {"LABEL_CHAIN", "LABEL_FRAGMENTS", "LABEL_TRUNCATED", "LABEL_HU", "LABEL_OUTLIER", "RELEASE_DRIFT"}
# one of each kind the issue names: a merged vertebra pair, a missing vertebra, a stray fragment, a truncated organ, a
# mislabel with the wrong HU, a 3x volume
ERRORS = ["LABEL_CHAIN:merged", "LABEL_CHAIN:gap", "LABEL_FRAGMENTS:far", "LABEL_TRUNCATED:slices", "LABEL_HU:low",
          "LABEL_OUTLIER:volume"]


@pytest.fixture(scope="module")
def spec() -> ReleaseSpec:
    return population_spec(load_spec("totalsegmentator-v2"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, spec: ReleaseSpec) -> Sample:
    return make_population(tmp_path_factory.mktemp("precision") / "clean", spec, cases=CASES, seed=11)


def check(root: Path, spec: ReleaseSpec) -> Report:
    return run_check(root, spec, "test", mode="deep", jobs=1, subset=True)


def warned_cases(report: Report) -> set[str]:
    return {f.case for f in report.findings if f.code in LABEL_CODES and f.severity != "info"}


def test_clean_population_gets_no_warning_from_the_label_checks(clean: Sample, spec: ReleaseSpec) -> None:
    report = check(clean.root, spec)
    assert warned_cases(report) == set()
    assert {f.code for f in report.findings} <= LABEL_CODES  # the population is valid otherwise


def test_each_kind_of_injected_label_error_is_found_and_no_other_case_is_warned(
    clean: Sample, spec: ReleaseSpec, tmp_path: Path
) -> None:
    root = tmp_path / "release"
    shutil.copytree(clean.root, root)
    sample = Sample(root=root, cases=clean.cases, seed=clean.seed)
    injected = inject_faults(sample, spec, ERRORS)
    report = check(root, spec)
    missed = [f for f in injected
              if not any((g.code, g.case, g.path) == (f.code, f.case, f.path) for g in report.findings)]
    assert missed == []
    assert warned_cases(report) <= {f.case for f in injected}
