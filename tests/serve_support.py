"""Test support for `tsqa serve`: configs with known tokens, releases that take seconds to check, a canary outside
the roots, waiting for a check, and a real `tsqa serve` process on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from qa.rules.spec import load_spec
from qa.synth.sample import make_sample

SPEC = "totalsegmentator-v2"
SUBMIT_TOKEN = "submit-token-0123456789abcdef0123456789"
READ_TOKEN = "read-token-fedcba9876543210fedcba987654"
DONE = ("finished", "failed", "cancelled")
SLOW_CASES = 600  # ~10 s of deep scanning with one process: a check still running when a test acts on it


def need_serve() -> None:
    """The serve extra must be installed; CI (tox installs it) fails instead of skipping."""
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the serve tests need {exc.name}; tox installs the serve extra")
        pytest.skip(f"{exc.name} is not installed (pip install -e '.[serve,test]')", allow_module_level=True)


def sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def config_data(roots: dict[str, object], data: Path, **extra: object) -> dict:
    return {"roots": {k: str(v) if isinstance(v, Path) else v for k, v in roots.items()}, "data": str(data),
            "tokens": [{"name": "ci", "role": "submit", "token_sha256": sha(SUBMIT_TOKEN)},
                       {"name": "viewer", "role": "read", "token_sha256": sha(READ_TOKEN)}], **extra}


def write_config(path: Path, roots: dict[str, object], data: Path, **extra: object) -> Path:
    path.write_text(yaml.safe_dump(config_data(roots, data, **extra), sort_keys=False))
    return path


def small_release(dest: Path, cases: int = 2, faults: tuple[str, ...] = ("GEOM_AFFINE_MISMATCH",)) -> Path:
    return make_sample(dest, load_spec(SPEC), cases=cases, faults=list(faults)).root


def slow_release(dest: Path, cases: int = SLOW_CASES) -> Path:
    """A release whose deep check takes seconds: one sample case, hard-linked into `cases` case folders."""
    make_sample(dest, load_spec(SPEC), cases=1)
    first = dest / "s0000"
    files = [p.relative_to(first) for p in first.rglob("*") if p.is_file()]
    for k in range(1, cases):
        case = dest / f"s{k:04d}"
        (case / "segmentations").mkdir(parents=True)
        for f in files:
            os.link(first / f, case / f)
    return dest


@dataclass
class Canary:
    """A valid release outside every root, with its access times set in the past: a read moves them."""

    root: Path
    files: list[Path] = field(default_factory=list)

    @classmethod
    def make(cls, dest: Path) -> Canary:
        small_release(dest, cases=1, faults=())
        canary = cls(dest, sorted(p for p in dest.rglob("*") if p.is_file()))
        for f in canary.files:
            os.utime(f, (1_000_000, 2_000_000))  # atime before mtime: relatime updates it on the next read
        probe = dest.parent / "atime-probe"
        probe.write_bytes(b"x")
        os.utime(probe, (1_000_000, 2_000_000))
        probe.read_bytes()
        if probe.stat().st_atime == 1_000_000:
            pytest.skip("this file system does not record reads (noatime): the canary cannot see them")
        return canary

    def untouched(self) -> bool:
        return all(f.stat().st_atime == 1_000_000 for f in self.files)


def wait_until(probe: Callable[[], object], timeout: float = 60.0, every: float = 0.05) -> object:
    """The first truthy value of `probe`, polled; AssertionError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not reached in {timeout} s")
        time.sleep(every)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Served:
    """A real `tsqa serve --config FILE --port 0` in a process group of its own, its log kept."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log: list[str] = []
        command = [sys.executable, "-P", "-m", "qa", "serve", "--config", str(config), "--port", "0"]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        self.ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.kill()
            raise AssertionError("tsqa serve did not start:\n" + "".join(self.log))

    def _read(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
            if found:
                self.url = found.group(1)
                self.ready.set()

    def text(self) -> str:
        return "".join(self.log)

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL to the whole process group: the server crashing, web and worker alike."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)
