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
