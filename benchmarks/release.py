"""Release-scale benchmark: whole `tsqa` commands, as a user types them, on a release of the full v2 size.

The release: `--cases` case folders (s0000 upwards; default 1,228, the v2 release's count; 1,939 is v3's) of
realistic size, 240 x 240 x 210 voxels at 1.5 mm (12,096,000 voxels a case; `--grid` for smaller smoke runs), made by
qa.synth's phantom (`plan_case`, `default_grid`, `write_cases`, `write_meta`): `--distinct` cases (default 24) are
written by a process pool of `--jobs` processes and every other case folder is hard links to one of them, so that
the release costs the disk (and the page cache) only its distinct cases. meta.csv lists every case: at 1,228 cases
the v2 split sizes (1082/57/89) dealt at random, at 1,939 the v3 spec's train/test, other counts checked with
`--subset`. The spec is the built-in one, except that v2's reference table (the dataset card's coverage and mean
volume per class, which RELEASE_DRIFT judges a release of 100 cases or more against) is replaced by one measured on
the distinct cases: no phantom matches a real population, and against the card nearly every class drifts (a trial
of 120 cases: 137 warnings). The command then names that spec file (`--spec WORKDIR/...-totalsegmentator-v2.yaml`),
every other line of it the built-in YAML's, and the drift check still runs in full. Built releases are reused while
their marker file matches. Before the first measurement the release is checked once (`tsqa check --no-cache
--fail-on warning`) and must be clean, no finding at warning or above, its findings printed by severity and code
(`--skip-build-check` skips it).

Every row runs a whole command in a process of its own: the `tsqa` console script beside `sys.executable` (else
`python -m qa`), default settings (--jobs all cores, --max-memory 1G, the fact cache in $TSQA_CACHE_DIR, set to a
folder of the benchmark's), the report written with --out:

- cold: `tsqa check RELEASE --spec SPEC --out DIR`, TSQA_CACHE_DIR a fresh empty folder;
- warm: the same again, same cache folder, release unchanged;
- render: `tsqa render DIR/report.json` of the cold run (its HTML rebuilt in place);
- quick: `tsqa check RELEASE --spec SPEC --mode quick --out DIR`, a fresh empty cache;
- outputs: the cold run's outputs timed apart (see below);
- marginal: the cold command on releases of 24 and of 12 cases (hard links to the same distinct cases, meta.csv of
  their own, `--subset`), and the libdeflate floor (`deep.measure_floor`: read and inflate every file, in as many
  processes as tsqa's default jobs) on the same two; `--repeats` rounds in turn, the fastest run of each kept;
- one: the cold command on a one-case release: start-up and fixed costs.

Per row: wall time; CPU time of the command and every process it waited for (RUSAGE_CHILDREN before and after:
tsqa stops and waits for its workers' fork server, so the workers count); peak RSS of the main process (its VmHWM)
and the most all its processes held at one moment (the sum of their VmRSS), both sampled from /proc every 50 ms by
`peaks.PeakSampler` (sparser than deep.py's 5 ms so that the sampler takes ~1% of a core, not 15%: VmHWM is a
high-water mark and misses nothing, the sum may miss a spike shorter than 50 ms); exit code; sizes of report.json,
report.html and evidence/; findings by severity and code; cases served from the fact cache (report.json's "cache").

The outputs' share. report.json says how long scanning and judging took (`duration_s`, timed inside `run_check`) but
not what writing the outputs took. A fresh interpreter therefore reads the cold run's report.json back and writes its
outputs again into a fresh folder with the functions `tsqa check` calls after `run_check` (`write_outputs`'s steps):
importing the output modules (matplotlib, Jinja2: only a run that writes pages loads them), `make_evidence` (the
pictures, reading the release), `write_report` (report.json) and `write_html` (report.html), each timed. The outputs'
share is their sum against the cold run's `duration_s`. As a cross-check the table prints, for every check row, the
command's wall time outside `duration_s` (interpreter start, imports, spec, outputs, exit) and `tsqa render`, which
redoes the HTML as a whole command.

Targets (issue 20): warm <= 5% of cold; outputs (JSON + HTML + pictures) <= 10% of the scan; `tsqa render` <= 15 s;
main process <= 400 MB at 1,939 cases; report.json <= 30 MB; one-case deep command <= 0.8 s; no QA_PARTIAL; deep
marginal cost per case (24 minus 12 cases) <= 1.5x the floor's. The script prints which are met, FAIL lines for
those missed (and for a release that is not clean), and exits 1 if any is.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from deep import FIELD_OF_VIEW, STUDY_TYPE, link_tree, measure_floor
from peaks import PeakSampler

if TYPE_CHECKING:
    from qa.rules.spec import ReleaseSpec
    from qa.synth.sample import CasePlan, Grid

GRID = (240, 240, 210)  # 12,096,000 voxels a case, 315 mm head to feet
LAYOUT_VERSION = 1
SAMPLE_S = 0.05
ROWS = ("cold", "warm", "render", "quick", "outputs", "marginal", "one")
MARGINAL_CASES = (24, 12)
V3_CASES = 1939
TARGET_WARM_SHARE = 0.05
TARGET_OUTPUT_SHARE = 0.10
TARGET_RENDER_S = 15.0
TARGET_MAIN_MB = 400.0
TARGET_MAIN_CASES = V3_CASES
TARGET_JSON_MB = 30.0
TARGET_ONE_CASE_S = 0.8
TARGET_MARGINAL_RATIO = 1.5


@dataclass(frozen=True)
class Release:
    """A built benchmark release: its root, its spec (a name or a YAML file), its case count and whether it is
    checked as a subset."""

    root: Path
    spec: str
    cases: int
    subset: bool


@dataclass
class Row:
    """One whole command as it ran: times, memory, exit code, what it wrote and what its report says."""

    name: str
    cases: int
    wall_s: float
    cpu_s: float
    main_mb: float
    all_mb: float
    exit_code: int
    json_mb: float = 0.0
    html_mb: float = 0.0
    evidence_mb: float = 0.0
    scan_s: float | None = None
    by_severity: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    cached_cases: int | None = None
    note: str = ""

    @property
    def outside_scan_s(self) -> float | None:
        return None if self.scan_s is None else self.wall_s - self.scan_s


def tsqa_command() -> list[str]:
    """tsqa as the user types it: the console script of the environment this Python runs in, else `python -m qa`."""
    script = Path(sys.executable).parent / "tsqa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "qa"]


def spec_for(cases: int) -> tuple[str, bool]:
    """The spec a release of this many cases is checked with, and whether as a subset (its split sizes cannot be the
    release's)."""
    if cases == V3_CASES:
        return "totalsegmentator-v3", False
    return "totalsegmentator-v2", cases != 1228


def split_list(spec: ReleaseSpec, cases: int, seed: int) -> list[str] | None:
    """The splits of a full-size release, dealt at random: the spec's published sizes; None (plan_case's splits in
    turn) when the spec publishes none or the count is not the release's."""
    if not spec.splits or cases != spec.expected_cases:
        return None
    splits = [name for name, count in spec.splits.items() for _ in range(count)]
    random.Random(seed).shuffle(splits)
    return splits


def distinct_plans(spec: ReleaseSpec, distinct: int, grid: tuple[int, int, int], seed: int) -> list[tuple[CasePlan,
                                                                                                         Grid]]:
    """qa.synth's cases over deep.py's field of view (the upper abdomen: realistic organ sizes on a 24-36 cm grid)."""
    from qa.synth.phantom import Region
    from qa.synth.sample import default_grid, plan_case

    region = Region(STUDY_TYPE, *FIELD_OF_VIEW)
    plans = [dataclasses.replace(plan_case(spec, seed, index), region=region) for index in range(distinct)]
    return [(plan, default_grid(spec, plan, grid)) for plan in plans]


def _matches(root: Path, marker: Path, expected: dict) -> bool:
    return root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected


def _fresh(root: Path, marker: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    marker.unlink(missing_ok=True)
    root.mkdir(parents=True)


def build_distinct(workdir: Path, distinct: int, grid: tuple[int, int, int], jobs: int, seed: int = 0) -> tuple[
        Path, dict]:
    """The distinct cases, written once by a process pool of `jobs` processes and reused while their marker matches."""
    from qa.rules.spec import load_spec
    from qa.synth.sample import write_cases, write_meta

    spec = load_spec("totalsegmentator-v2")
    name = f"release-distinct-{distinct}-{'x'.join(map(str, grid))}"
    root, marker = workdir / name, workdir / f"{name}.json"
    expected = {"version": LAYOUT_VERSION, "distinct": distinct, "grid": list(grid), "seed": seed,
                "field_of_view": list(FIELD_OF_VIEW)}
    if _matches(root, marker, expected):
        return root, expected
    _fresh(root, marker)
    clock = time.perf_counter()
    planned = distinct_plans(spec, distinct, grid, seed)
    write_meta(root, spec, [plan for plan, _ in planned])
    with multiprocessing.Pool(jobs) as pool:
        parts = [[entry] for entry in planned]
        for number, written in enumerate(pool.imap(functools.partial(write_cases, root, spec), parts), start=1):
            print(f"  built {written[0]} ({number}/{distinct}, {time.perf_counter() - clock:.0f} s)", flush=True)
    marker.write_text(json.dumps(expected))
    return root, expected


def bench_spec(workdir: Path, distinct_root: Path, spec_name: str, jobs: int) -> str:
    """The spec the release is checked with: the built-in one, unless it has a reference table (v2's, the dataset
    card's coverage and volumes): no phantom matches a real population's, so at 100 cases or more RELEASE_DRIFT would
    warn on nearly every class. Then the same spec, every other line of its YAML kept, with its `reference:` measured
    on the distinct cases (`measured_reference`, as precision.py does), so that the drift check still runs in full and
    finds nothing. Written beside the distinct cases and reused with them."""
    import re
    from importlib import resources

    from qa.app.pipeline import executor_for, scan_release
    from qa.rules.spec import SPEC_PACKAGE, load_spec
    from qa.scan.case import Layout
    from qa.scan.measures import measured_reference
    from qa.source.fs import FolderSource

    spec = load_spec(spec_name)
    if spec.reference is None:
        return spec_name
    path = workdir / f"{distinct_root.name}-{spec_name}.yaml"
    marker = distinct_root.with_suffix(".json")
    if path.is_file() and path.stat().st_mtime >= marker.stat().st_mtime:
        return str(path)
    from qa.app.workers import stop_workers

    try:
        facts = scan_release(FolderSource(distinct_root), Layout.of(spec), mode="deep", executor=executor_for(jobs))
    finally:
        stop_workers()  # no fork server of this process left to outlive the build
    reference = measured_reference(facts, spec, f"the benchmark's {distinct_root.name}")
    text = resources.files(SPEC_PACKAGE).joinpath(f"{spec_name}.yaml").read_text("utf-8")
    dumped = yaml.safe_dump({"reference": reference.model_dump(mode="json", exclude_none=True)}, sort_keys=False)
    replaced, count = re.subn(r"^reference:\n(?:(?:[ #].*)?\n)*", lambda _: dumped, text, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"cannot find the reference table of {spec_name}")
    path.write_text(replaced, "utf-8")
    load_spec(str(path))  # it must load as the built-in one does
    return str(path)


def build_release(workdir: Path, distinct_root: Path, distinct: dict, cases: int, jobs: int, seed: int = 0) -> Release:
    """`cases` case folders, each hard links to a distinct case's files in turn, with a meta.csv listing every case
    (the distinct case's study type, the rest of its row drawn by plan_case for its own index)."""
    from qa.rules.spec import load_spec
    from qa.synth.sample import plan_case, write_meta

    spec_name, subset = spec_for(cases)
    spec = load_spec(spec_name)
    name = f"release-{spec_name.removeprefix('totalsegmentator-')}-{cases}-of-{distinct_root.name}"
    root, marker = workdir / name, workdir / f"{name}.json"
    expected = {"version": LAYOUT_VERSION, "cases": cases, "spec": spec_name, "distinct": distinct}
    if not _matches(root, marker, expected):
        _fresh(root, marker)
        region = distinct_plans(spec, 1, tuple(distinct["grid"]), seed)[0][0].region
        splits = split_list(spec, cases, seed)
        plans = []
        for index in range(cases):
            plan = dataclasses.replace(plan_case(spec, seed, index), region=region)
            plans.append(plan if splits is None else dataclasses.replace(plan, split=splits[index]))
            link_tree(distinct_root / f"s{index % distinct['distinct']:04d}", root / plan.case)
        write_meta(root, spec, plans)
        marker.write_text(json.dumps(expected))
    return Release(root, bench_spec(workdir, distinct_root, spec_name, jobs), cases, subset)


def warm_up(root: Path) -> int:
    """Read every distinct file once (the hard links share their pages) so that every row starts from a warm page
    cache."""
    return sum(len(path.read_bytes()) for path in sorted(root.rglob("*.nii.gz")))


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.is_dir() else 0.0


def _children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_command(name: str, command: list[str], cases: int, cache: Path | None, out: Path | None) -> Row:
    """A whole command in a process group of its own, its memory sampled from /proc while it runs; what it wrote
    read back from `out`."""
    env = dict(os.environ)
    if cache is not None:
        env["TSQA_CACHE_DIR"] = str(cache)
    cpu, clock = _children_cpu_s(), time.perf_counter()
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)
    with PeakSampler(run.pid, SAMPLE_S) as sampler:
        _, stderr = run.communicate()
    wall = time.perf_counter() - clock
    if run.returncode not in (0, 1):
        raise SystemExit(f"{name}: {' '.join(command)} exited {run.returncode}:\n{stderr}")
    row = Row(name, cases, wall, _children_cpu_s() - cpu, sampler.peaks.get(run.pid, 0) / 1024,
              sampler.together_kib / 1024, run.returncode)
    if out is not None and (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text())
        row.json_mb, row.html_mb = _size_mb(out / "report.json"), _size_mb(out / "report.html")
        row.evidence_mb, row.scan_s = _size_mb(out / "evidence"), report["duration_s"]
        row.by_severity = {k: v for k, v in report["summary"]["by_severity"].items() if v}
        row.by_code = report["summary"]["by_code"]
        row.cached_cases = None if report.get("cache") is None else report["cache"]["cases"]
    return row


def check_command(release: Release, out: Path, *extra: str) -> list[str]:
    command = [*tsqa_command(), "check", str(release.root), "--spec", release.spec, "--out", str(out), *extra]
    return [*command, "--subset"] if release.subset else command


def run_check(name: str, release: Release, runs: Path, cache: Path | None, *extra: str) -> Row:
    out = runs / name.replace(" ", "-").replace(",", "")
    shutil.rmtree(out, ignore_errors=True)
    return run_command(name, check_command(release, out, *extra), release.cases, cache, out)


def fresh_cache(runs: Path, name: str) -> Path:
    folder = runs / f"cache-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def build_check(release: Release, runs: Path) -> None:
    """The release must check clean before it is measured: no finding at warning or above."""
    row = run_check("build check", release, runs, None, "--no-cache", "--quiet", "--fail-on", "warning")
    print(f"build check: {release.cases} cases, {row.wall_s:.1f} s, exit {row.exit_code}, findings by severity "
          f"{json.dumps(row.by_severity)}, by code {json.dumps(row.by_code)}")
    if row.exit_code != 0:
        raise SystemExit("the benchmark release is not clean: findings at warning or above (see above)")


@dataclass(frozen=True)
class Outputs:
    """The outputs of one report written again, each step timed (seconds)."""

    imports_s: float
    pictures_s: float
    json_s: float
    html_s: float

    @property
    def total_s(self) -> float:
        return self.imports_s + self.pictures_s + self.json_s + self.html_s


def write_outputs_timed(report_path: Path, root: Path, out: Path) -> Outputs:
    """`write_outputs`'s steps on a report read back from report.json, each timed, in this (fresh) interpreter."""
    from qa.app.pipeline import open_output, open_release
    from qa.output.json import read_report
    from qa.rules.spec import load_spec
    from qa.scan.case import Layout
    from qa.scan.memory import DEFAULT_BUDGET

    report = read_report(report_path)
    spec = load_spec(report.spec_id)
    source = open_release(root, spec)
    clock = time.perf_counter()
    from qa.app.evidence import make_evidence
    from qa.output.html.history import index_href
    from qa.output.html.page import write_html
    from qa.output.json import write_report

    steps = [time.perf_counter()]
    with open_output(out, root) as folder:
        report.evidence = make_evidence(report, source, Layout.of(spec), folder, max_memory=DEFAULT_BUDGET)
        steps.append(time.perf_counter())
        write_report(report, folder)
        steps.append(time.perf_counter())
        write_html(report, folder, index_href=index_href(folder.path, None))
        steps.append(time.perf_counter())
    return Outputs(steps[0] - clock, steps[1] - steps[0], steps[2] - steps[1], steps[3] - steps[2])


def measure_outputs(report_path: Path, root: Path, runs: Path) -> Outputs:
    out = runs / "outputs"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, __file__, "--measure-outputs", str(report_path), "--root", str(root),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measuring the outputs failed:\n{done.stderr}")
    return Outputs(**json.loads(done.stdout.strip().splitlines()[-1]))


def run_floor(release: Release, processes: int) -> Row:
    """deep.py's libdeflate floor, in a fresh interpreter, as a row."""
    cpu, clock = _children_cpu_s(), time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--measure-floor", str(release.root), "--floor-jobs",
                           str(processes)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - clock
    if done.returncode != 0:
        raise SystemExit(f"the floor failed:\n{done.stderr}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(f"floor: libdeflate ({processes} proc)", release.cases, wall, _children_cpu_s() - cpu,
               inner["parent_rss_mb"], float("nan"), 0, note=f"{inner['wall_s']:.2f} s inside; {inner['note']}")


@dataclass(frozen=True)
class Marginal:
    """The fastest of each marginal row over the rounds, and every round's walls."""

    best: dict[str, Row]
    walls: dict[str, list[float]]


def marginal_rows(releases: dict[int, Release], runs: Path, repeats: int) -> Marginal:
    """Cold whole commands on the 24- and 12-case releases and the floor on both, in turn `repeats` times."""
    processes = os.cpu_count() or 1
    measured: dict[str, list[Row]] = {}
    for _ in range(repeats):
        for cases, release in releases.items():
            name = f"cold, {cases} cases"
            measured.setdefault(name, []).append(run_check(name, release, runs, fresh_cache(runs, name)))
        for cases, release in releases.items():
            row = run_floor(release, processes)
            measured.setdefault(f"floor, {cases} cases", []).append(row)
    best = {name: min(rows, key=lambda r: r.wall_s) for name, rows in measured.items()}
    return Marginal(best, {name: [r.wall_s for r in rows] for name, rows in measured.items()})


def print_table(rows: list[Row]) -> None:
    print(f"{'row':<28} {'cases':>5} {'wall s':>8} {'CPU s':>8} {'main MB':>7} {'all MB':>7} {'exit':>4} "
          f"{'json MB':>7} {'html MB':>7} {'evid MB':>7} {'scan s':>7} {'outside':>7} {'cached':>6}  findings")
    for r in rows:
        scan = "-" if r.scan_s is None else f"{r.scan_s:.2f}"
        outside = "-" if r.outside_scan_s is None else f"{r.outside_scan_s:.2f}"
        cached = "-" if r.cached_cases is None else str(r.cached_cases)
        all_mb = "-" if r.all_mb != r.all_mb else f"{r.all_mb:.0f}"
        print(f"{r.name:<28} {r.cases:>5} {r.wall_s:>8.2f} {r.cpu_s:>8.2f} {r.main_mb:>7.0f} {all_mb:>7} "
              f"{r.exit_code:>4} {r.json_mb:>7.2f} {r.html_mb:>7.2f} {r.evidence_mb:>7.2f} {scan:>7} {outside:>7} "
              f"{cached:>6}  {r.note or f'{json.dumps(r.by_severity)} {json.dumps(r.by_code)}'}")


@dataclass
class Verdicts:
    """Each target's line and the failures among them."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def judge(self, what: str, value: str, target: str, met: bool, note: str = "") -> None:
        self.lines.append(f"{what:<44} {value:>16}  target {target:<12} {'met' if met else 'MISSED'}{note}")
        if not met:
            self.failures.append(f"{what}: {value} (target {target})")


def judge_targets(rows: dict[str, Row], outputs: Outputs | None, marginal: Marginal | None, cases: int) -> Verdicts:
    verdicts = Verdicts()
    cold, warm = rows.get("cold"), rows.get("warm")
    if cold is not None and warm is not None:
        share = warm.wall_s / cold.wall_s
        verdicts.judge("warm re-run / cold run (wall)", f"{share:.1%}", f"<= {TARGET_WARM_SHARE:.0%}",
                       share <= TARGET_WARM_SHARE)
    if cold is not None and outputs is not None:
        share = outputs.total_s / cold.scan_s
        verdicts.judge("outputs / scan (JSON + HTML + pictures)", f"{share:.1%}", f"<= {TARGET_OUTPUT_SHARE:.0%}",
                       share <= TARGET_OUTPUT_SHARE)
    if "render" in rows:
        verdicts.judge("tsqa render (wall)", f"{rows['render'].wall_s:.2f} s", f"<= {TARGET_RENDER_S:g} s",
                       rows["render"].wall_s <= TARGET_RENDER_S)
    checks = [r for name, r in rows.items() if name in ("cold", "warm", "quick")]
    if checks:
        peak = max(r.main_mb for r in checks)
        note = "" if cases == TARGET_MAIN_CASES else f"  (at {cases} cases; the target is at {TARGET_MAIN_CASES})"
        verdicts.judge("main process peak RSS (cold, warm, quick)", f"{peak:.0f} MB", f"<= {TARGET_MAIN_MB:g} MB",
                       peak <= TARGET_MAIN_MB, note)
    if cold is not None:
        verdicts.judge("report.json size (cold)", f"{cold.json_mb:.2f} MB", f"<= {TARGET_JSON_MB:g} MB",
                       cold.json_mb <= TARGET_JSON_MB)
    if "one" in rows:
        verdicts.judge("one-case deep command (wall)", f"{rows['one'].wall_s:.2f} s", f"<= {TARGET_ONE_CASE_S:g} s",
                       rows["one"].wall_s <= TARGET_ONE_CASE_S)
    partial = sum(r.by_code.get("QA_PARTIAL", 0) for r in rows.values())
    verdicts.judge("QA_PARTIAL findings, all check rows", str(partial), "0", partial == 0)
    if marginal is not None:
        big, small = MARGINAL_CASES
        extra = big - small
        deep = (marginal.best[f"cold, {big} cases"].wall_s - marginal.best[f"cold, {small} cases"].wall_s) / extra
        floor = (marginal.best[f"floor, {big} cases"].wall_s - marginal.best[f"floor, {small} cases"].wall_s) / extra
        verdicts.judge(f"deep marginal / floor's ({big} minus {small} cases)", f"{deep / floor:.2f}x",
                       f"<= {TARGET_MARGINAL_RATIO:g}x", deep <= TARGET_MARGINAL_RATIO * floor,
                       f"  (deep {deep:.3f} s/case, floor {floor:.3f} s/case)")
    return verdicts


def clean_failures(rows: dict[str, Row]) -> list[str]:
    """Every check row of a clean release must come out clean: nothing at warning or above."""
    return [f"{name}: findings at warning or above {json.dumps(r.by_severity)}" for name, r in rows.items()
            if r.scan_s is not None and (r.by_severity.get("warning", 0) or r.by_severity.get("error", 0))]


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _grid(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 3 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"{text!r} is not a grid like 240x240x210 (each side at least 16)")
    return parts


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the releases are built and kept for reuse, and the runs written (outside the repo)")
    parser.add_argument("--cases", type=int, default=1228, help="case folders of the release (default 1228; 1939: v3)")
    parser.add_argument("--distinct", type=int, default=24, help="distinct cases written (default 24)")
    parser.add_argument("--grid", type=_grid, default=GRID, help="voxels of a case (default 240x240x210)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes that build the distinct cases (default: all cores); tsqa keeps its defaults")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the marginal rows (default 3; fastest kept)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(ROWS),
                        help=f"comma-separated rows to run (default all: {','.join(ROWS)})")
    parser.add_argument("--skip-build-check", action="store_true",
                        help="do not check that the release is clean before measuring it")
    parser.add_argument("--keep", action="store_true", help="keep the runs' report folders and caches")
    parser.add_argument("--measure-outputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-jobs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")
    needs_cold = {"warm", "render", "outputs"} & set(args.only)
    if needs_cold and "cold" not in args.only:
        parser.error(f"rows {', '.join(sorted(needs_cold))} need the cold row")
    if not 1 <= args.distinct <= args.cases <= 9999:
        parser.error("need 1 <= --distinct <= --cases <= 9999")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.measure_outputs is not None:
        print(json.dumps(asdict(write_outputs_timed(args.measure_outputs, args.root, args.out))))
        return 0
    if args.measure_floor is not None:
        print(json.dumps(asdict(measure_floor(args.measure_floor, args.floor_jobs))))
        return 0
    workdir = args.workdir.resolve()
    clock = time.perf_counter()
    distinct_root, distinct = build_distinct(workdir, args.distinct, args.grid, args.jobs)
    release = build_release(workdir, distinct_root, distinct, args.cases, args.jobs)
    small = {n: build_release(workdir, distinct_root, distinct, n, args.jobs) for n in (*MARGINAL_CASES, 1)
             if "marginal" in args.only or (n == 1 and "one" in args.only)}
    voxels = args.grid[0] * args.grid[1] * args.grid[2]
    print(f"release: {release.root} ({release.cases} cases of {'x'.join(map(str, args.grid))} = {voxels:,} voxels, "
          f"{args.distinct} distinct; spec {release.spec}{', --subset' if release.subset else ''}), ready in "
          f"{time.perf_counter() - clock:.1f} s")
    print(f"tsqa: {' '.join(tsqa_command())}")
    print(f"warm-up: read {warm_up(distinct_root) / 1e6:.0f} MB (untimed)")
    runs = workdir / f"runs-{release.root.name}"
    runs.mkdir(parents=True, exist_ok=True)
    if not args.skip_build_check:
        build_check(release, runs)
    print(f"load before: {_load()} (1/5/15 min, {os.cpu_count()} CPUs)")
    rows: dict[str, Row] = {}
    outputs = marginal = None
    if "cold" in args.only:
        cache = fresh_cache(runs, "cold")
        rows["cold"] = run_check("cold", release, runs, cache)
        if "warm" in args.only:
            rows["warm"] = run_check("warm", release, runs, cache)
        if "outputs" in args.only:
            outputs = measure_outputs(runs / "cold" / "report.json", release.root, runs)
        if "render" in args.only:
            report = runs / "cold" / "report.json"
            rows["render"] = run_command("render", [*tsqa_command(), "render", str(report)], release.cases, None, None)
    if "quick" in args.only:
        rows["quick"] = run_check("quick", release, runs, fresh_cache(runs, "quick"), "--mode", "quick")
    if "one" in args.only:
        rows["one"] = run_check("one", small[1], runs, fresh_cache(runs, "one"))
    if "marginal" in args.only:
        marginal = marginal_rows({n: small[n] for n in MARGINAL_CASES}, runs, args.repeats)
    print(f"load after:  {_load()} (1/5/15 min)")
    print_table([*rows.values(), *(marginal.best.values() if marginal else [])])
    print(f"(CPU s: the command and every process it waited for; main MB: its VmHWM; all MB: the most its processes "
          f"held at one moment, sampled every {SAMPLE_S * 1000:.0f} ms; scan s: report.json's duration_s; outside: "
          "wall minus scan s; floor rows: the whole interpreter, and the pool's own wall time inside it)")
    if marginal is not None:
        for name, walls in marginal.walls.items():
            print(f"  {name + ':':<20} walls {', '.join(f'{w:.2f}' for w in walls)} s")
    if outputs is not None:
        scan = rows["cold"].scan_s
        print(f"outputs of the cold report, written again in a fresh interpreter: imports {outputs.imports_s:.2f} s, "
              f"pictures {outputs.pictures_s:.2f} s, report.json {outputs.json_s:.2f} s, report.html "
              f"{outputs.html_s:.2f} s; total {outputs.total_s:.2f} s against the scan's {scan:.2f} s")
    checked = {**rows, **(marginal.best if marginal else {})}
    verdicts = judge_targets(checked, outputs, marginal, release.cases)
    for line in verdicts.lines:
        print(line)
    failures = clean_failures(checked) + verdicts.failures
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(runs, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
