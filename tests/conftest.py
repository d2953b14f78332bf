"""Shared fixtures: the real example release and its reference statistics (tests/data), and a deadline."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DATA, copy_example


@pytest.fixture(autouse=True)
def own_fact_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty fact cache of its own (tsqa check and the processes it starts honour TSQA_CACHE_DIR):
    never the user's, and never one a test before it warmed."""
    folder = tmp_path_factory.mktemp("fact-cache")
    monkeypatch.setenv("TSQA_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def example_root() -> Path:
    """The real TotalSegmentator case in the release layout (read-only)."""
    return DATA / "totalseg-example"


@pytest.fixture(scope="session")
def example_statistics() -> Path:
    return DATA / "totalseg-example-reference" / "statistics.json"


@pytest.fixture
def example_copy(example_root: Path, tmp_path: Path):
    """A factory: a writable copy of the real example under tmp_path, with the given case ids."""
    return lambda *cases: copy_example(example_root, tmp_path / "release", list(cases) or ["s0000"])


DEADLINE_SECONDS = 30


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail instead of hanging: a check that blocks on a file is a bug, not a slow test."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the test did not end within {DEADLINE_SECONDS} s: something hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(DEADLINE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
