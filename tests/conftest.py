"""Shared fixtures: where the real example release lives."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SHARED_DATA, copy_example


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


@pytest.fixture
def example_copy(example_root: Path, tmp_path: Path):
    """A factory: a writable copy of the real example under tmp_path, with the given case ids."""
    return lambda *cases: copy_example(example_root, tmp_path / "release", list(cases) or ["s0000"])
