"""The fact cache in a check: unchanged cases are not read again, changed ones are, and the answer never differs."""

from __future__ import annotations

import os
import sqlite3
import zlib
from pathlib import Path

import pytest
from support import CountingSource, finish, report_data, run_tsqa, run_tsqa_read_only, start_tsqa

from qa.app.cli import main
from qa.app.pipeline import run_check
from qa.report.model import Report
from qa.rules.spec import ReleaseSpec, load_spec
from qa.scan.cache import DB_NAME, FactCache
from qa.scan.stamp import case_stamp
from qa.synth.sample import make_sample

SPEC = load_spec("totalsegmentator-v2")
META = SPEC.meta.file


@pytest.fixture
def release(tmp_path: Path) -> Path:
    make_sample(tmp_path / "release", SPEC, cases=3)
    return tmp_path / "release"


@pytest.fixture
def source(release: Path, tmp_path: Path) -> CountingSource:
    return CountingSource(release, tmp_path / "opened.log")


def check(source: CountingSource, cache: FactCache | None, mode: str = "deep", spec: ReleaseSpec = SPEC,
          verify: bool = False) -> Report:
    return run_check(source, spec, "test", mode=mode, jobs=2, subset=True, fail_on="never", cache=cache,
                     verify_cache=verify)


def nifti_files(release: Path) -> set[str]:
    return {p.relative_to(release).as_posix() for p in release.rglob("*.nii.gz")}


def fingerprints(report: Report) -> list[tuple[str, str, str | None]]:
    return sorted((f.fingerprint, f.severity, f.path) for f in report.findings)


def test_an_unchanged_release_is_served_from_the_cache_without_reading_a_case_file(
        source: CountingSource, release: Path, tmp_path: Path) -> None:
    with FactCache.open(tmp_path / "cache") as cache:
        first = check(source, cache)
        assert set(source.opened()) >= nifti_files(release)
        again = check(source, cache)
    assert source.opened() == [META]  # judging reads meta.csv afresh; no case file is opened
    assert again.cache.files == again.summary.files == len(nifti_files(release))
    assert again.cache.cases == 3 and first.cache.files == 0
    assert fingerprints(again) == fingerprints(first)
    assert again.model_dump(include={"cases", "classes", "overlaps"}) == first.model_dump(
        include={"cases", "classes", "overlaps"})


def test_after_one_case_changes_only_its_files_are_read(source: CountingSource, release: Path, tmp_path: Path) -> None:
    with FactCache.open(tmp_path / "cache") as cache:
        check(source, cache)
        source.opened()
        mask = release / "s0001" / SPEC.mask_file("liver")
        mask.write_bytes(mask.read_bytes())  # the same bytes, written again: a new mtime and ctime
        again = check(source, cache)
    read = set(source.opened()) - {META}
    assert read == {p for p in nifti_files(release) if p.startswith("s0001/")}
    assert again.cache.cases == 2


def test_a_changed_spec_is_judged_afresh_without_a_rescan(source: CountingSource, tmp_path: Path) -> None:
    stricter = SPEC.model_copy(update={"severities": {**SPEC.severities, "LABEL_TRUNCATED": "warning"}})
    with FactCache.open(tmp_path / "cache") as cache:
        first = check(source, cache)
        source.opened()
        again = check(source, cache, spec=stricter)
    assert source.opened() == [META]
    truncated = [f for f in first.findings if f.code == "LABEL_TRUNCATED"]
    assert truncated and {f.severity for f in truncated} == {"info"}
    assert {f.severity for f in again.findings if f.code == "LABEL_TRUNCATED"} == {"warning"}


def test_quick_facts_never_serve_a_deep_run_but_deep_facts_serve_a_quick_one(
        source: CountingSource, release: Path, tmp_path: Path) -> None:
    with FactCache.open(tmp_path / "cache") as cache:
        check(source, cache, mode="quick")
        source.opened()
        deep = check(source, cache, mode="deep")
        assert deep.cache.files == 0 and set(source.opened()) >= nifti_files(release)
        quick = check(source, cache, mode="quick")
        fresh = check(source, None, mode="quick")
    assert quick.cache.files == quick.summary.files
    assert fingerprints(quick) == fingerprints(fresh)
    assert quick.model_dump(include={"cases"}) == fresh.model_dump(include={"cases"})


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cache_file_is_said_in_one_line_and_started_anew(source: CountingSource, tmp_path: Path,
                                                                    damage: str) -> None:
    folder = tmp_path / "cache"
    with FactCache.open(folder) as cache:
        first = check(source, cache)
        cache.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = folder / DB_NAME
    data = path.read_bytes()
    path.write_bytes(b"not a database, " * 1000 if damage == "garbage" else data[: len(data) // 2])
    said: list[str] = []
    with FactCache.open(folder, notice=said.append) as cache:
        again = check(source, cache)
        third = check(source, cache)
    assert len(said) == 1 and "starting it anew" in said[0] and "\n" not in said[0]
    assert fingerprints(again) == fingerprints(first)
    assert third.cache.cases == 3  # rebuilt: the run after serves every case again


def test_a_cache_of_another_facts_version_is_ignored_and_started_anew(source: CountingSource, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    with FactCache.open(folder) as cache:
        check(source, cache)
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("PRAGMA user_version = 1006")  # format 1, facts version 6
    said: list[str] = []
    with FactCache.open(folder, notice=said.append) as cache:
        again = check(source, cache)
    assert len(said) == 1 and "another tsqa version" in said[0]
    assert again.cache.files == 0


def test_a_small_size_bound_evicts_the_entries_used_longest_ago(source: CountingSource, release: Path,
                                                                tmp_path: Path) -> None:
    make_sample(tmp_path / "other", SPEC, cases=3, seed=1)
    other = CountingSource(tmp_path / "other", tmp_path / "other.log")
    with FactCache.open(tmp_path / "cache") as cache:
        check(source, cache)
        one_release = cache.info().entry_bytes
        cache.max_bytes = int(one_release * 1.5)
        check(other, cache)
        info = cache.info()
    assert info.entry_bytes <= cache.max_bytes
    kept = {location: cases for location, cases, _, _ in info.releases}
    assert kept[other.location] == 3  # the newest release whole; the older one lost cases
    assert kept.get(source.location, 0) < 3


def test_verify_cache_catches_a_file_replaced_with_the_same_stat_key(source: CountingSource, release: Path,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    with FactCache.open(folder) as cache:
        check(source, cache)
    mask = release / "s0000" / SPEC.mask_file("liver")
    before = mask.stat()
    data = bytearray(mask.read_bytes())
    data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])  # another CRC32: same size, other content
    mask.write_bytes(bytes(data))
    os.utime(mask, ns=(before.st_atime_ns, before.st_mtime_ns))
    # Writing changed the file's ctime, which no program can set back: the stat key sees this replacement. A file
    # system that keeps ctime (a restored backup, some network file systems) would not; the cached stamp is set to
    # the new one to stand for that case.
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("UPDATE cases SET stamp = ? WHERE name = ?", (case_stamp(source, "s0000"), b"s0000"))
    source.opened()
    with FactCache.open(folder) as cache:
        trusted = check(source, cache, verify=False)
        assert source.opened() == [META] and trusted.cache.cases == 3  # the stale facts served: what verify is for
        verified = check(source, cache, verify=True)
    read = source.opened()
    assert verified.cache.cases == 2 and verified.cache.verified
    assert {p for p in read if p.startswith("s0000/")} == {p for p in nifti_files(release) if p.startswith("s0000/")}
    path = f"s0000/{SPEC.mask_file('liver')}"
    assert any(f.path == path for f in verified.findings) and not any(f.path == path for f in trusted.findings)


def test_two_checks_at_once_on_one_cache_both_finish_with_correct_reports(release: Path, tmp_path: Path) -> None:
    common = ["--spec", SPEC.id, "--subset", "--fail-on", "never", "--quiet", "--jobs", "1", "--mode", "quick"]
    alone = run_tsqa("check", release, "--out", tmp_path / "alone", "--no-cache", *common)
    assert alone.returncode == 0, alone.stderr
    cache = tmp_path / "cache"
    runs = [start_tsqa("check", release, "--out", tmp_path / f"run{k}", "--cache", cache, *common) for k in (1, 2)]
    for run in map(finish, runs):
        assert run.returncode == 0 and run.stderr == "", run.stderr
    expected = _findings(tmp_path / "alone")
    assert _findings(tmp_path / "run1") == expected and _findings(tmp_path / "run2") == expected
    third = run_tsqa("check", release, "--out", tmp_path / "run3", "--cache", cache, *common)
    assert third.returncode == 0
    report = report_data(tmp_path / "run3" / "report.json")
    assert report["cache"]["cases"] == 3 and _findings(tmp_path / "run3") == expected


def _findings(out: Path) -> list[tuple[str, str]]:
    report = report_data(out / "report.json")
    return sorted((f["fingerprint"], f["severity"]) for f in report["findings"])


def test_no_cache_reads_everything_and_leaves_the_cache_alone(release: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    args = ["check", str(release), "--spec", SPEC.id, "--subset", "--fail-on", "never", "--quiet", "--jobs", "1"]
    assert main([*args, "--out", str(tmp_path / "a"), "--cache", str(cache)]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--cache", str(cache), "--no-cache"]) == 0
    assert report_data(tmp_path / "b" / "report.json")["cache"] is None
    assert main([*args, "--out", str(tmp_path / "c"), "--cache", str(cache)]) == 0
    assert report_data(tmp_path / "c" / "report.json")["cache"]["cases"] == 3


def test_cache_info_lists_the_release_and_clear_empties_it(release: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cache"
    assert main(["check", str(release), "--spec", SPEC.id, "--subset", "--quiet", "--jobs", "1", "--fail-on", "never",
                 "--out", str(tmp_path / "out"), "--cache", str(cache)]) == 0
    capsys.readouterr()
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    info = capsys.readouterr().out
    assert f"{release.resolve()}: 3 cases, {len(nifti_files(release))} files" in info
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    assert "3 cases" in capsys.readouterr().out
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_the_default_cache_folder_is_tsqa_cache_dir(release: Path, tmp_path: Path, own_fact_cache: Path) -> None:
    assert main(["check", str(release), "--spec", SPEC.id, "--subset", "--quiet", "--jobs", "1", "--fail-on", "never",
                 "--out", str(tmp_path / "out")]) == 0
    assert (own_fact_cache / DB_NAME).is_file()


@pytest.mark.parametrize("given", [True, False], ids=["--cache", "TSQA_CACHE_DIR"])
def test_a_cache_folder_inside_the_release_is_refused_with_2_and_nothing_written(
    release: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, given: bool
) -> None:
    before = sorted(p.relative_to(release) for p in release.rglob("*"))
    inside = release / "s0000" / "cache"
    monkeypatch.setenv("TSQA_CACHE_DIR", str(inside))
    option = ["--cache", str(inside)] if given else []
    assert main(["check", str(release), "--spec", SPEC.id, "--subset", "--out", str(tmp_path / "out"), *option]) == 2
    assert "inside the release" in capsys.readouterr().err
    assert sorted(p.relative_to(release) for p in release.rglob("*")) == before
    assert main(["check", str(release), "--spec", SPEC.id, "--subset", "--quiet", "--fail-on", "never", "--out",
                 str(tmp_path / "out"), "--no-cache", *option]) == 0
    assert sorted(p.relative_to(release) for p in release.rglob("*")) == before


def cli_check(release: Path, out: Path, cache: Path, *options: str) -> list[str]:
    return ["check", str(release), "--spec", SPEC.id, "--subset", "--jobs", "1", "--fail-on", "never", "--out",
            str(out), "--cache", str(cache), *options]


def notices(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "fact cache" in line]


def test_a_crafted_entry_runs_no_code_and_is_a_miss_said_once(release: Path, tmp_path: Path) -> None:
    import pickle

    folder, canary = tmp_path / "cache", tmp_path / "ran"
    first = run_tsqa(*cli_check(release, tmp_path / "first", folder))
    assert first.returncode == 0, first.stderr

    class Crafted:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {canary}",)

    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("UPDATE cases SET facts = ?", (zlib.compress(pickle.dumps(Crafted())),))
    again = run_tsqa(*cli_check(release, tmp_path / "again", folder))
    assert again.returncode == 0 and "Traceback" not in again.stderr
    assert not canary.exists()
    said = notices(again.stderr)
    assert len(said) == 1 and "not facts of this tsqa" in said[0], again.stderr
    assert report_data(tmp_path / "again" / "report.json")["cache"]["cases"] == 0
    run_tsqa(*cli_check(release, tmp_path / "third", folder))
    assert report_data(tmp_path / "third" / "report.json")["cache"]["cases"] == 3  # stored anew


def test_a_cache_of_the_pickle_format_is_started_anew_with_one_notice(source: CountingSource, tmp_path: Path) -> None:
    from qa.scan.cache import USER_VERSION
    from qa.scan.facts import FACTS_VERSION

    assert USER_VERSION == 2000 + FACTS_VERSION
    folder = tmp_path / "cache"
    with FactCache.open(folder) as cache:
        check(source, cache)
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute(f"PRAGMA user_version = {1000 + FACTS_VERSION}")
    said: list[str] = []
    with FactCache.open(folder, notice=said.append) as cache:
        assert check(source, cache).cache.files == 0
    assert len(said) == 1 and "another tsqa version" in said[0]
    with FactCache.open(folder, notice=said.append) as cache:
        assert check(source, cache).cache.cases == 3


def test_a_read_only_cache_serves_its_entries_stores_nothing_and_says_so_once(release: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    assert run_tsqa(*cli_check(release, tmp_path / "first", folder)).returncode == 0
    with sqlite3.connect(folder / DB_NAME) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (release / "s0001" / "segmentations" / "liver.nii.gz").unlink()  # one case to scan, and nowhere to store it
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    run = run_tsqa_read_only(folder, *cli_check(release, tmp_path / "out", folder))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    said = notices(run.stderr)
    assert len(said) == 1 and "read-only" in said[0] and "nothing new is stored" in said[0], run.stderr
    report = report_data(tmp_path / "out" / "report.json")
    assert report["cache"]["cases"] == 2
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_read_only_folder_without_a_cache_is_a_run_without_one(release: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    run = run_tsqa_read_only(folder, *cli_check(release, tmp_path / "out", folder))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert len(notices(run.stderr)) == 1 and "read-only" in run.stderr
    assert (tmp_path / "out" / "report.html").is_file() and list(folder.iterdir()) == []


def test_a_cache_another_run_holds_is_waited_for_then_left_unwritten_and_never_removed(
    source: CountingSource, release: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    with FactCache.open(folder) as cache:
        check(source, cache)
    (release / "s0001" / "segmentations" / "liver.nii.gz").unlink()
    holder = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another run in the middle of writing
    said: list[str] = []
    try:
        with FactCache.open(folder, notice=said.append, busy_ms=300) as cache:
            assert cache.usable
            report = check(source, cache)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.cache.cases == 2
    assert len(said) == 1 and "another run held it for 0.3 s" in said[0] and "nothing was removed" in said[0]
    with FactCache.open(folder) as cache:
        assert sum(r[1] for r in cache.info().releases) == 3  # every entry still there


def test_a_busy_cache_is_not_cleared_and_the_clear_says_so(release: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    assert run_tsqa(*cli_check(release, tmp_path / "first", folder)).returncode == 0
    run = run_tsqa_read_only(folder, "cache", "clear", "--cache", folder)
    assert run.returncode == 2 and "was not cleared" in run.stderr and "Traceback" not in run.stderr
    with FactCache.open(folder) as cache:
        assert sum(r[1] for r in cache.info().releases) == 3
