"""The service as it is run: `tsqa serve --config FILE` on a free port of 127.0.0.1, a real uvicorn, its worker
process, real sockets; a crash of the whole process group and a restart."""

from __future__ import annotations

import http.client
import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from serve_support import (
    DONE,
    READ_TOKEN,
    SUBMIT_TOKEN,
    Canary,
    Served,
    bearer,
    wait_until,
    write_config,
)
from support import process_group

from qa.app.serve.store import JobStore
from qa.app.serve.worker import INTERRUPTED
from qa.report.model import Report

SUBMIT, READ = bearer(SUBMIT_TOKEN), bearer(READ_TOKEN)
# uvicorn re-raises the signal that stopped it once it has shut down, so that its exit status tells how it ended
STOPPED = (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def served(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path, Canary]]:
    base = tmp_path_factory.mktemp("uvicorn")
    canary = Canary.make(base / "canary")
    config = write_config(base / "tsqa-serve.yaml", {"store": store}, base / "data")
    server = Served(config)
    yield server, base, canary
    server.stop()


def raw_get(url: str, target: str, headers: dict[str, str]) -> int:
    """A GET whose request line is sent exactly as written (httpx would normalise '..' away)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("GET", target, skip_accept_encoding=True)
    for key, value in headers.items():
        connection.putheader(key, value)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def check_states(client: httpx.Client, job_id: str) -> tuple[set[str], dict]:
    seen: set[str] = set()

    def done() -> dict | None:
        got = client.get(f"/api/v1/checks/{job_id}", headers=READ).json()
        seen.add(got["state"])
        return got if got["state"] in DONE else None

    return seen, wait_until(done, timeout=90)


def test_it_binds_127_0_0_1_by_default(served) -> None:
    server, _, _ = served
    assert urlsplit(server.url).hostname == "127.0.0.1"


def test_submit_progress_and_every_report_format_over_http(served) -> None:
    server, _, _ = served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/api/v1/healthz").json() == {"status": "ok", "worker": True}
        created = client.post("/api/v1/checks", json={"root": "store", "path": "small", "subset": True},
                              headers=SUBMIT)
        assert created.status_code == 202
        seen, done = check_states(client, created.json()["id"])
        assert done["state"] == "finished" and seen <= {"queued", "running", "finished"}
        assert done["progress"]["cases_done"] == done["progress"]["cases_total"] == 2
        files = {name: client.get(url, headers=READ) for name, url in done["reports"].items()}
    assert all(r.status_code == 200 for r in files.values())
    assert Report.model_validate_json(files["report.json"].content).summary.by_code == done["counts"]["by_code"]
    assert "<html" in files["report.html"].text
    assert ET.fromstring(files["junit.xml"].content).tag == "testsuites"
    assert files["report.sarif"].json()["version"] == "2.1.0"


def test_a_missing_wrong_and_read_only_token_over_http(served) -> None:
    server, _, _ = served
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/api/v1/roots").status_code == 401
        assert client.get("/api/v1/roots", headers=bearer("wrong")).status_code == 401
        assert client.get("/api/v1/roots", headers=READ).status_code == 200
        assert client.post("/api/v1/checks", json={"root": "store"}, headers=READ).status_code == 403


@pytest.mark.parametrize("target", [
    "/reports/../../canary/meta.csv", "/reports/%2e%2e/%2e%2e/canary/meta.csv", "/reports/..%2f..%2fcanary/meta.csv",
    "/reports/%252e%252e/canary/meta.csv", "/reports//{canary}/meta.csv", "/reports/store/%00/report.json",
    "/api/v1/checks/..%2f..%2fcanary/report.json",
])
def test_encoded_paths_reach_no_file_outside_the_reports(served, target: str) -> None:
    server, base, canary = served
    status = raw_get(server.url, target.format(canary=str(canary.root).lstrip("/")), READ)
    assert 400 <= status < 500
    assert canary.untouched()


def test_the_log_names_tokens_never_their_value(served) -> None:
    server, _, _ = served
    httpx.get(f"{server.url}/api/v1/roots", headers=bearer("wrong-secret-in-the-header"))
    httpx.get(f"{server.url}/api/v1/roots", headers=SUBMIT)
    wait_until(lambda: "refused GET /api/v1/roots" in server.text(), timeout=10)
    text = server.text()
    assert SUBMIT_TOKEN not in text and READ_TOKEN not in text and "wrong-secret-in-the-header" not in text
    assert "Traceback" not in text


def test_a_crash_fails_the_running_check_and_a_restart_runs_the_queued_one(store: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "tsqa-serve.yaml", {"store": store}, tmp_path / "data")
    server = Served(config)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            running = client.post("/api/v1/checks", json={"root": "store", "path": "slow", "subset": True},
                                  headers=SUBMIT).json()["id"]
            queued = client.post("/api/v1/checks", json={"root": "store", "path": "small", "subset": True},
                                 headers=SUBMIT).json()["id"]
            wait_until(lambda: client.get(f"/api/v1/checks/{running}", headers=READ).json()["progress"]["cases_done"])
        pid = JobStore(tmp_path / "data" / "jobs.sqlite3").get(running).pid
    finally:
        server.kill()  # the web process and the worker die at once; the check's own process group notices
    wait_until(lambda: not process_group(pid), timeout=10)
    restarted = Served(config)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            crashed = client.get(f"/api/v1/checks/{running}", headers=READ).json()
            assert crashed["state"] == "failed" and crashed["reason"] == INTERRUPTED
            _, done = check_states(client, queued)
            assert done["state"] == "finished" and done["verdict"] == "fail"
    finally:
        assert restarted.stop() in STOPPED


def test_sigterm_stops_the_service_cleanly(store: Path, tmp_path: Path) -> None:
    server = Served(write_config(tmp_path / "tsqa-serve.yaml", {"store": store}, tmp_path / "data"))
    assert server.stop() in STOPPED
    assert "Application shutdown complete" in server.text()
