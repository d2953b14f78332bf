"""Cluster overhead: `tsqa check` deep on the deep benchmark's release, the process pool against a Dask LocalCluster."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deep import build_release

RUNS = {
    "processes": ["--jobs", "{jobs}"],
    "dask": ["--executor", "dask", "--scheduler", "local:{jobs}"],
}


def run_check(root: Path, out: Path, options: list[str]) -> tuple[float, dict]:
    """Wall time of one `python -P -m qa check` (the interpreter's start and the cluster's included) and its report."""
    command = [sys.executable, "-P", "-m", "qa", "check", str(root), "--mode", "deep", "--subset", "--quiet",
               "--fail-on", "never", "--out", str(out), *options]
    clock = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - clock
    return wall, json.loads((out / "report.json").read_text())


def comparable(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in ("started", "duration_s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tsqa-bench",
                        help="where the deep benchmark's release is built and kept (outside the repo)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=2, help="pool processes and LocalCluster workers (default 2)")
    args = parser.parse_args(argv)
    release = build_release(args.workdir.resolve(), args.cases, args.jobs)
    for path in release.files:  # warm page cache, as deep.py has it
        path.read_bytes()
    print(f"release: {release.root} ({len(release.cases)} cases, {release.megabytes:.0f} MB); "
          f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    reports, walls = {}, {}
    with tempfile.TemporaryDirectory(prefix="tsqa-cluster-bench-") as tmp:
        for name, options in RUNS.items():
            filled = [option.format(jobs=args.jobs) for option in options]
            walls[name], report = run_check(release.root, Path(tmp) / name, filled)
            reports[name] = report
            print(f"{name:<10} {' '.join(filled):<40} wall {walls[name]:6.2f} s  report's duration "
                  f"{report['duration_s']:6.2f} s  {len(report['findings'])} findings", flush=True)
    same = comparable(reports["processes"]) == comparable(reports["dask"])
    print(f"dask / processes: wall {walls['dask'] / walls['processes']:.2f}; same report apart from timing: {same}; "
          f"load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
