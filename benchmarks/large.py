"""The largest case of a real release, checked in full within the default memory budget: a CT of 500 x 470 x 850
voxels (int16, 400 MB inflated) with 117 masks on its grid, checked with two jobs, the peak memory of every process
watched from outside."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from deep import nifti_files, warm_up
from peaks import run_watched

SPEC_NAME = "totalsegmentator-v2"
SHAPE = (500, 470, 850)
LAYOUT_VERSION = 2  # 2: the case made by qa.synth's phantom
# A thorax-abdomen-pelvis field of view, 850 slices: most of the classes' masks are not empty, as in a real large case.
STUDY_TYPE = "ct thorax-abdomen-pelvis"
LIMIT_MIB = 1024


def build_release(workdir: Path, cases: int) -> Path:
    """`cases` cases on the large grid under workdir, built once (a few minutes, several GB of memory while the first
    case is made) and reused: the first is made by qa.synth, the others are hard links to its files."""
    import dataclasses

    from qa.rules.spec import load_spec
    from qa.synth.sample import REGIONS, default_grid, plan_case, write_cases, write_meta

    spec = load_spec(SPEC_NAME)
    name = f"large-v2-{'x'.join(map(str, SHAPE))}-{cases}-cases"
    root, marker = workdir / name, workdir / f"{name}.json"
    expected = {"version": LAYOUT_VERSION, "cases": cases, "shape": list(SHAPE), "study_type": STUDY_TYPE}
    if root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == expected:
        return root
    if root.exists():
        shutil.rmtree(root)
    marker.unlink(missing_ok=True)
    region = next(r for r in REGIONS if r.study_type == STUDY_TYPE)
    plans = [dataclasses.replace(plan_case(spec, 0, index), region=region) for index in range(cases)]
    root.mkdir(parents=True)
    write_meta(root, spec, plans)
    clock = time.perf_counter()
    write_cases(root, spec, [(plans[0], default_grid(spec, plans[0], SHAPE))])
    print(f"  built {plans[0].case} in {time.perf_counter() - clock:.0f} s", flush=True)
    first = root / plans[0].case
    for plan in plans[1:]:
        for path in first.rglob("*"):
            target = root / plan.case / path.relative_to(first)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
    marker.write_text(json.dumps(expected))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the release is built and kept for reuse (outside the repo)")
    parser.add_argument("--cases", type=int, default=2, help="cases, all of the large grid (default 2)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-memory", help="passed to tsqa check (default: tsqa's own, 1G)")
    args = parser.parse_args(argv)
    root = build_release(args.workdir.resolve(), args.cases)
    files = nifti_files(root)
    size = sum(p.stat().st_size for p in files[:: args.cases]) / 1e6
    print(f"release: {root} ({args.cases} cases of {SHAPE}, {len(files)} files, {size:.0f} MB per case on disk)")
    print(f"warm-up: read {warm_up(files) / 1e6:.0f} MB (untimed)")
    out = Path(tempfile.mkdtemp(prefix="tsqa-large-"))
    command = [sys.executable, "-m", "qa", "check", str(root), "--spec", SPEC_NAME, "--subset", "--jobs",
               str(args.jobs), "--quiet", "--fail-on", "never", "--out", str(out)]
    if args.max_memory:
        command += ["--max-memory", args.max_memory]
    clock = time.perf_counter()
    watched = run_watched(command)
    wall = time.perf_counter() - clock
    if watched.done.returncode != 0:
        raise SystemExit(f"tsqa check failed (exit {watched.done.returncode}):\n{watched.done.stderr}")
    report = json.loads((out / "report.json").read_text())
    shutil.rmtree(out)
    codes = report["summary"]["by_code"]
    print(f"tsqa check --jobs {args.jobs}: {wall:.1f} s wall, findings by code {json.dumps(codes)}")
    others = sorted((kib / 1024 for pid, kib in watched.sampler.peaks.items() if pid != watched.pid), reverse=True)
    together = watched.sampler.together_kib / 1024
    print(f"peak resident memory, MiB: main process {watched.main_mib:.0f}; its other processes "
          f"{', '.join(f'{mib:.0f}' for mib in others)}; all processes at one moment {together:.0f}")
    case = report["cases"][0]
    liver = dict(zip(case["labels"]["columns"], case["labels"]["rows"]["liver"], strict=True))  # report schema 3
    print(f"{case['case']}: image mean {case['image_stats']['mean']:.1f} HU; liver {liver['volume_ml']:.0f} mL, "
          f"mean {liver['mean_hu']:.1f} HU; {len(report['overlaps'])} overlapping class pairs")
    failures = [f"{code} reported: the case was not checked in full" for code in ("QA_PARTIAL", "QA_INTERNAL")
                if code in codes]
    largest = max([watched.main_mib, *others])
    if largest >= LIMIT_MIB:
        failures.append(f"a process reached {largest:.0f} MiB, not under {LIMIT_MIB}")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
