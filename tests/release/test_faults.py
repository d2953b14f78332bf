"""Every finding code, made on purpose: a fault injected into a fresh synthetic release must be reported by the quick
check with its code, case, path and the spec's severity, and must not drag other findings along."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa.app.pipeline import run_check, scan_release
from qa.report.model import Report
from qa.rules.codes import CODES, SEVERITY_RANK
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.case import Layout
from qa.scan.measures import measured_reference
from qa.source.fs import FolderSource
from qa.synth.archive import ARCHIVE_FAULT_NAMES
from qa.synth.population import make_population, population_spec
from qa.synth.sample import FAULT_NAMES, FAULTS, InjectedFault, Sample, inject_faults, make_sample

SHAPE = (24, 20, 32)
CASES = 2

# Faults that no sample can show, with the reason; every other code and subcode of the catalogue has a fault.
NO_FAULT = {
    "QA_INTERNAL:crash": "a failure of tsqa itself (tests/execute kill a worker on purpose)",
    "QA_INTERNAL:error": "a failure of tsqa itself",
    "QA_INTERNAL:file": "a failure of tsqa itself (tests/scan/test_case.py makes one file's reading fail)",
    "QA_PARTIAL:overlaps": "a case larger than the default --max-memory takes gigabytes of inflation; "
                           "tests/release/test_memory.py makes one on real files under a small budget",
    "QA_PARTIAL:padding": "as QA_PARTIAL:overlaps",
    "QA_PARTIAL:pieces": "as QA_PARTIAL:overlaps",
    "META_UNREADABLE:too_large": "a 64 MB meta.csv (tests/scan/test_meta.py reads one with a smaller bound)",
    "META_SPLIT_COUNTS:total": "with the release's split sizes a changed total always changes a split too "
                               "(tests/checks/test_meta.py shows it alone)",
    "QA_WAIVER_EXPIRED": "made by a waivers file, not by the release (tests/release/test_gate.py makes it)",
    "QA_WAIVER_UNUSED": "made by a waivers file, not by the release (tests/release/test_gate.py makes it)",
    "ARCHIVE_UNVERIFIED:skipped": "the user's choice (--no-checksum), not a fault of the archive "
                                  "(tests/release/test_zip.py runs it)",
    "ARCHIVE_UNVERIFIED:unreadable": "a read error of the disk while the archive is hashed",
}


def needs(name: str) -> str:
    """The pass that sees a fault's finding: the code's, unless its subcode needs the deep pass."""
    code, _, subcode = name.partition(":")
    sub = CODES[code].subcode(subcode) if subcode else None
    return "deep" if CODES[code].needs == "deep" or (sub is not None and sub.needs == "deep") else "quick"


QUICK_FAULTS = [name for name in FAULT_NAMES if needs(name) == "quick"]
DEEP_FAULTS = [name for name in FAULT_NAMES if needs(name) == "deep" and not FAULTS[name].population]
POPULATION_FAULTS = [name for name in FAULT_NAMES if FAULTS[name].population]


@dataclass
class Checked:
    fault: str
    spec: ReleaseSpec
    sample: Sample
    report: Report


@pytest.fixture(scope="module")
def v2() -> ReleaseSpec:
    return load_spec("totalsegmentator-v2")


def sized_like(spec: ReleaseSpec, sample: Sample) -> ReleaseSpec:
    """The spec with the sample's own case count and split sizes, so that only a changed split can break them."""
    splits = dict(Counter(sample.splits.values()))
    return spec.model_copy(update={"expected_cases": len(sample.cases), "splits": splits})


def check(root: Path, spec: ReleaseSpec, subset: bool = True, mode: str = "quick") -> Report:
    return run_check(root, spec, "test", mode=mode, jobs=1, subset=subset)


def findings_of(report: Report, fault: InjectedFault) -> list[Finding]:
    return [f for f in report.findings if (f.code, f.case, f.path) == (fault.code, fault.case, fault.path)]


def at_least_warning(report: Report) -> list[Finding]:
    return [f for f in report.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["warning"]]


@pytest.fixture(scope="module", params=QUICK_FAULTS)
def checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Checked:
    fault = request.param
    sample = make_sample(tmp_path_factory.mktemp("fault") / "release", v2, cases=CASES, shape=SHAPE)
    split_counts = fault.startswith("META_SPLIT_COUNTS")
    spec = sized_like(v2, sample) if split_counts else v2
    inject_faults(sample, spec, [fault])
    return Checked(fault, spec, sample, check(sample.root, spec, subset=not split_counts))


def test_every_code_and_subcode_of_the_catalogue_has_a_fault() -> None:
    """Folder faults here; archive faults (qa.synth.archive) in tests/release/test_zip.py."""
    wanted = {f"{c.code}:{s.name}" for c in CODES.values() for s in c.subcodes}
    wanted |= {c.code for c in CODES.values() if not c.subcodes}
    assert wanted - set(NO_FAULT) == set(FAULT_NAMES) | set(ARCHIVE_FAULT_NAMES)


def test_fault_is_reported_with_its_code_subcode_case_path_and_the_specs_severity(checked: Checked) -> None:
    assert checked.sample.faults
    for fault in checked.sample.faults:
        found = findings_of(checked.report, fault)
        assert found, f"{checked.fault}: no {fault.code} for case {fault.case} at {fault.path}"
        assert {(f.subcode, f.severity) for f in found} == {
            (fault.subcode, checked.spec.severity(fault.code, fault.subcode))}


def test_fault_brings_no_other_finding_at_warning_or_above(checked: Checked) -> None:
    injected = {(f.code, f.case, f.path) for f in checked.sample.faults}
    inherent = FAULTS[checked.fault].collateral
    other = [f for f in at_least_warning(checked.report)
             if (f.code, f.case, f.path) not in injected and f.code not in inherent]
    assert other == []


@pytest.mark.parametrize("fault", DEEP_FAULTS)
def test_deep_fault_is_reported_with_its_code_subcode_case_and_path(
    tmp_path: Path, v2: ReleaseSpec, fault: str
) -> None:
    """On the default grid: on the smallest, neighbouring vertebrae lie closer than the anatomy tolerance."""
    sample = make_sample(tmp_path / "release", v2, cases=CASES, faults=[fault])
    report = check(sample.root, v2, mode="deep")
    for injected in sample.faults:
        found = findings_of(report, injected)
        assert {f.subcode for f in found} == {injected.subcode}, f"{fault}: {injected}"


@dataclass
class Population:
    """A clean synthetic population on disk and the spec it is checked with: its own spacing and, as reference
    table, its own measured classes."""

    root: Path
    cases: list[str]
    spec: ReleaseSpec


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory, v2: ReleaseSpec) -> Population:
    spec = population_spec(v2)
    made = make_population(tmp_path_factory.mktemp("population") / "clean", spec, cases=30, seed=3)
    facts = scan_release(FolderSource(made.root), Layout.of(spec), mode="deep")
    reference = measured_reference(facts, spec, "the clean population").model_copy(update={"min_cases": 20})
    return Population(made.root, made.cases, spec.model_copy(update={"reference": reference}))


@pytest.mark.parametrize("fault", POPULATION_FAULTS)
def test_population_fault_is_reported_with_its_code_subcode_case_and_path(
    population: Population, tmp_path: Path, fault: str
) -> None:
    """Faults that need a release of many cases at a realistic scale, injected into a copy of a 30-case population."""
    root = tmp_path / "release"
    shutil.copytree(population.root, root)
    sample = Sample(root=root, cases=population.cases, seed=3)
    inject_faults(sample, population.spec, [fault])
    report = check(root, population.spec, mode="deep")
    for injected in sample.faults:
        found = findings_of(report, injected)
        assert injected.subcode in {f.subcode for f in found}, f"{fault}: {injected}"


def test_deep_check_also_reports_every_file_fault_the_quick_check_sees(tmp_path: Path, v2: ReleaseSpec) -> None:
    """meta.csv is judged from the same facts in both modes; files are read differently, so each file fault is
    rechecked."""
    faults = [name for name in QUICK_FAULTS if name.startswith(("FILE_", "GEOM_", "IMAGE_", "LABEL_"))]
    sample = make_sample(tmp_path / "release", v2, cases=len(faults), faults=faults, shape=SHAPE)
    report = check(sample.root, v2, mode="deep")
    assert [fault for fault in sample.faults if not findings_of(report, fault)] == []


def test_fault_lands_in_the_last_case(tmp_path: Path, v2: ReleaseSpec) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=3, faults=["FILE_MISSING", "IMAGE_DTYPE"], shape=SHAPE)
    assert [(f.code, f.case) for f in sample.faults] == [("FILE_MISSING", "s0002"), ("IMAGE_DTYPE", "s0001")]


@pytest.mark.parametrize("spec_name", ["totalsegmentator-v1", "totalsegmentator-v2", "totalsegmentator-v3"])
def test_clean_sample_has_no_finding_at_warning_or_above(tmp_path: Path, spec_name: str) -> None:
    spec = load_spec(spec_name)
    sample = make_sample(tmp_path / "release", spec, cases=3, shape=SHAPE)
    assert at_least_warning(check(sample.root, spec)) == []


def test_unknown_column_is_only_a_warning(tmp_path: Path, v2: ReleaseSpec) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=CASES, faults=["META_COLUMNS:unknown"], shape=SHAPE)
    (finding,) = check(sample.root, v2).findings
    assert (finding.code, finding.severity, finding.details["unknown"]) == ("META_COLUMNS", "warning", ["comment"])


def test_quick_check_cannot_see_a_bad_gzip_crc(tmp_path: Path, v2: ReleaseSpec) -> None:
    """Header and ISIZE stay valid; only a full decompression (the deep pass) finds a CRC like v1's s0864."""
    sample = make_sample(tmp_path / "release", v2, cases=CASES, faults=["FILE_CORRUPT:stream"], shape=SHAPE)
    assert check(sample.root, v2).findings == []


def test_sample_with_the_specs_own_split_sizes_passes_the_split_count_check(tmp_path: Path, v2: ReleaseSpec) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=3, shape=SHAPE)
    assert check(sample.root, sized_like(v2, sample), subset=False).findings == []


def test_split_counts_of_a_partial_copy_are_reported_unless_it_is_checked_as_a_subset(
    tmp_path: Path, v2: ReleaseSpec
) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=CASES, shape=SHAPE)
    assert {f.code for f in check(sample.root, v2, subset=False).findings} == {"META_SPLIT_COUNTS"}
    assert check(sample.root, v2, subset=True).findings == []


@pytest.fixture
def clean(tmp_path: Path, v2: ReleaseSpec) -> Sample:
    return make_sample(tmp_path / "release", v2, cases=CASES, shape=SHAPE)


def test_symlinked_mask_leaving_the_release_is_corrupt_and_not_followed(
    clean: Sample, v2: ReleaseSpec, tmp_path: Path, deadline: None
) -> None:
    case = clean.cases[-1]
    path = f"{case}/{v2.mask_file('liver')}"
    # The target outside is a FIFO: following the link would block on open.
    outside = tmp_path / "outside.nii.gz"
    os.mkfifo(outside)
    (clean.root / path).unlink()
    (clean.root / path).symlink_to(outside)
    found = [f for f in check(clean.root, v2).findings if f.path == path]
    assert [(f.code, f.case) for f in found] == [("FILE_CORRUPT", case)]
    assert "leaving the release" in found[0].details["reason"]


def test_fifo_named_like_a_mask_is_corrupt_and_does_not_hang_the_check(
    clean: Sample, v2: ReleaseSpec, deadline: None
) -> None:
    case = clean.cases[-1]
    path = f"{case}/{v2.mask_file('liver')}"
    (clean.root / path).unlink()
    os.mkfifo(clean.root / path)
    found = [f for f in check(clean.root, v2).findings if f.path == path]
    assert [(f.code, f.case) for f in found] == [("FILE_CORRUPT", case)]
    assert found[0].details["reason"] == "not a regular file"


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every name under root with its size and modification time, links not followed."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            stat = os.lstat(os.path.join(folder, name))
            entries[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return entries


def test_check_writes_nothing_inside_the_release(tmp_path: Path, v2: ReleaseSpec) -> None:
    sample = make_sample(tmp_path / "release", v2, cases=CASES,
                         faults=["FILE_CORRUPT:size_mismatch", "FILE_UNEXPECTED"],
                         shape=SHAPE)
    before = listing(sample.root)
    report = check(sample.root, v2)
    assert report.findings
    assert listing(sample.root) == before
