"""A check on a real Dask LocalCluster: the pool's report, crashes as the pool has them, progress, workers that cannot
do the scans refused, and one-line usage errors before any scan, with or without Dask installed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import BlindSource, KillingSource, KillOnceSource, report_data, run_tsqa

from qa.app.cli import main
from qa.app.cluster import ask_workers
from qa.app.pipeline import run_check
from qa.app.workers import unfit_worker, worker_version
from qa.execute.cluster import ClusterError, DaskExecutor, dask_executor
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.source.fs import FolderSource
from qa.synth.archive import zip_release
from qa.synth.sample import Sample, make_sample

SPEC = load_spec("totalsegmentator-v2")
SHAPE = (24, 20, 64)
FAULTS = ("FILE_CORRUPT:stream", "LABEL_OVERLAP", "GEOM_SHAPE_MISMATCH", "FILE_UNEXPECTED:os_junk")
TIMING = {"started", "duration_s"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskExecutor]:
    """A LocalCluster of two single-threaded worker processes, shared by this module's tests."""
    with dask_executor("local:2") as executor:
        yield executor


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return make_sample(tmp_path_factory.mktemp("release") / "release", SPEC, cases=5, faults=FAULTS, shape=SHAPE)


def check(source: Path | FolderSource, **options) -> Report:
    return run_check(source, SPEC, "test", mode="deep", subset=True, **options)


def without_timing(report: Report) -> dict:
    return report.model_dump(mode="json", exclude=TIMING)


@pytest.mark.usefixtures("deadline")
def test_a_deep_check_on_a_local_cluster_reports_what_the_process_pool_reports(cluster: DaskExecutor,
                                                                             sample: Sample) -> None:
    on_cluster, in_pool = check(sample.root, executor=cluster), check(sample.root, jobs=2)
    assert {(f.code, f.path) for f in on_cluster.findings} >= {(f.code, f.path) for f in sample.faults}
    assert without_timing(on_cluster) == without_timing(in_pool)


@pytest.mark.usefixtures("deadline")
def test_dask_workers_read_a_zip_archive_by_its_path_as_the_pool_does(cluster: DaskExecutor, sample: Sample,
                                                                       tmp_path: Path) -> None:
    archive = tmp_path / "release.zip"
    zip_release(sample.root, archive)
    on_cluster, in_pool = check(archive, executor=cluster), check(archive, jobs=2)
    assert {(f.code, f.path) for f in on_cluster.findings} >= {(f.code, f.path) for f in sample.faults}
    assert without_timing(on_cluster) == without_timing(in_pool)


@pytest.mark.usefixtures("deadline")
def test_a_case_that_kills_its_dask_worker_twice_is_qa_internal_and_the_rest_complete(cluster: DaskExecutor,
                                                                                      sample: Sample) -> None:
    report = check(KillingSource(sample.root, "s0002"), executor=cluster)
    crashed = {f.case: f for f in report.findings if f.code == "QA_INTERNAL"}
    assert (crashed["s0002"].path, crashed["s0002"].subcode) == ("s0002", "crash")
    assert "died 2 times" in crashed["s0002"].message
    assert [c.case for c in report.cases] == ["s0000", "s0001", "s0002", "s0003", "s0004"]
    # Dask's scheduler may queue another case on a worker about to die (README: a known limit): at most one more
    assert len(crashed) <= 2
    assert [c.case for c in report.cases if c.labels] == [c for c in ["s0000", "s0001", "s0003", "s0004"]
                                                          if c not in crashed]


@pytest.mark.usefixtures("deadline")
def test_a_case_whose_dask_worker_dies_once_is_run_again_and_checked(cluster: DaskExecutor, sample: Sample,
                                                                     tmp_path: Path) -> None:
    report = check(KillOnceSource(sample.root, "s0001", tmp_path / "killed-once"), executor=cluster)
    assert (tmp_path / "killed-once").exists()
    assert [f for f in report.findings if f.code == "QA_INTERNAL"] == []
    assert len([c for c in report.cases if c.labels]) == 5


@pytest.mark.usefixtures("deadline")
def test_progress_counts_every_case_on_a_cluster(cluster: DaskExecutor, sample: Sample) -> None:
    seen: list[tuple[int, int, int]] = []
    report = check(sample.root, executor=cluster, progress=lambda done, total, files: seen.append((done, total, files)))
    assert [done for done, _, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[-1] == (5, 5, report.summary.files)


@pytest.mark.usefixtures("deadline")
def test_workers_that_cannot_see_the_release_are_refused_before_any_scan(cluster: DaskExecutor,
                                                                         sample: Sample) -> None:
    with pytest.raises(ClusterError, match=r"^Dask worker tcp://.* finds nothing at .*shared storage"):
        ask_workers(cluster, BlindSource(sample.root))
    ask_workers(cluster, FolderSource(sample.root))


def test_a_worker_running_another_tsqa_is_unfit(sample: Sample) -> None:
    problem = unfit_worker(FolderSource(sample.root), "0.0.1 (facts version 1)", True)
    assert problem == (f"runs tsqa {worker_version()}, not 0.0.1 (facts version 1): install the same tsqa on every "
                       "worker")


@pytest.mark.usefixtures("deadline")
@pytest.mark.parametrize(("options", "error"), [
    (["--executor", "dask"], "--executor dask needs --scheduler"),
    (["--scheduler", "local:2"], "--scheduler goes with --executor dask"),
    (["--executor", "dask", "--scheduler", "local:0"], "local:N needs N"),
    (["--executor", "dask", "--scheduler", "tcp//host:8786"], "is not a Dask scheduler address"),
    (["--executor", "dask", "--scheduler", "tcp://host:99999"], "is not a Dask scheduler address"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
], ids=["no scheduler", "scheduler without dask", "no local workers", "malformed address", "port out of range",
        "unreachable scheduler"])
def test_cluster_usage_errors_exit_2_in_one_line_before_any_scan(sample: Sample, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 options: list[str], error: str) -> None:
    assert main(["check", str(sample.root), "--spec", SPEC.id, "--out", str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tsqa: error:") and error in err
    assert not (tmp_path / "out").exists()


def test_tsqa_check_on_a_local_cluster_writes_the_report_and_leaves_no_process(sample: Sample, tmp_path: Path) -> None:
    run = run_tsqa("check", sample.root, "--spec", SPEC.id, "--subset", "--out", tmp_path / "out", "--executor", "dask",
                   "--scheduler", "local:2", "--fail-on", "never", timeout=180)
    assert run.returncode == 0, run.stderr
    assert "tsqa: Dask cluster local:2: 2 workers, 2 threads" in run.stderr
    report = report_data(tmp_path / "out" / "report.json")
    assert {(f["code"], f["path"]) for f in report["findings"]} >= {(f.code, f.path) for f in sample.faults}
    assert run.stdout.startswith(f"PASS {SPEC.id}, 5 cases")
    assert "Warning" not in run.stderr


@pytest.fixture
def without_dask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses find a `distributed` package that is not there: importing it fails as for a missing one."""
    fake = tmp_path / "no-dask" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError('no distributed', name='distributed')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")])))


@pytest.mark.usefixtures("without_dask")
def test_without_dask_tsqa_runs_and_executor_dask_is_a_usage_error(sample: Sample, tmp_path: Path) -> None:
    assert run_tsqa("--help").returncode == 0
    run = run_tsqa("check", sample.root, "--out", tmp_path / "out", "--executor", "dask", "--scheduler", "local:2")
    assert run.returncode == 2
    assert run.stderr.strip() == ("tsqa: error: --executor dask needs Dask's distributed (distributed is missing): "
                               "pip install 'tsqa[dask]'")
