"""Shared fixtures: where the real example release lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TSQA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def example_root() -> Path:
    """The real TotalSegmentator case in the release layout (read-only)."""
    root = SHARED_DATA / "totalseg-example"
    if not (root / "meta.csv").is_file():
        pytest.fail(f"the shared example release is missing at {root}; set TSQA_SHARED_DATA")
    return root


@pytest.fixture(scope="session")
def example_statistics() -> Path:
    return SHARED_DATA / "totalseg-example-reference" / "statistics.json"


def copy_example(example: Path, dest: Path, cases: list[str]) -> Path:
    """A writable release in `dest` whose cases are copies of the real example case, listed in meta.csv."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    header, row = (example / "meta.csv").read_bytes().split(b"\n")[:2]
    rows = [row.replace(b"s0000", case.encode()) for case in cases]
    (dest / "meta.csv").write_bytes(b"\n".join([header, *rows]) + b"\n")
    for case in cases:
        shutil.copytree(example / "s0000", dest / case, copy_function=shutil.copyfile)
    return dest


@pytest.fixture
def example_copy(example_root: Path, tmp_path: Path):
    """A factory: a writable copy of the real example under tmp_path, with the given case ids."""
    return lambda *cases: copy_example(example_root, tmp_path / "release", list(cases) or ["s0000"])
