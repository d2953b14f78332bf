"""The API in-process (FastAPI's TestClient) with its real worker process: checks from submission to every report
format, histories and diffs, one running check per root, cancelling, restarting, tokens and the limits."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient
from serve_support import DONE, READ_TOKEN, SPEC, SUBMIT_TOKEN, bearer, wait_until
from support import REPO, process_group, sarif_problems

from qa.app.serve.app import create_app
from qa.app.serve.openapi import api_document
from qa.app.serve.store import JobStore
from qa.app.serve.worker import INTERRUPTED
from qa.report.diff import ReportDiff
from qa.report.model import Report

SUBMIT, READ = bearer(SUBMIT_TOKEN), bearer(READ_TOKEN)


def submit(client: TestClient, **body: object) -> str:
    response = client.post("/api/v1/checks", json={"root": "store", **body}, headers=SUBMIT)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def status(client: TestClient, job_id: str) -> dict:
    response = client.get(f"/api/v1/checks/{job_id}", headers=READ)
    assert response.status_code == 200, response.text
    return response.json()


def finished(client: TestClient, job_id: str, timeout: float = 60) -> dict:
    return wait_until(lambda: (s := status(client, job_id))["state"] in DONE and s, timeout)


def test_a_check_goes_from_queued_to_finished_with_a_verdict_counts_and_progress(client: TestClient) -> None:
    job_id = submit(client, path="small", subset=True)
    seen = {status(client, job_id)["state"]}
    done = finished(client, job_id)
    seen.add(done["state"])
    assert seen <= {"queued", "running", "finished"} and done["state"] == "finished", done
    assert done["verdict"] == "fail" and done["counts"]["error"] >= 1
    assert done["counts"]["by_code"]["GEOM_AFFINE_MISMATCH"] == 1
    assert done["progress"] == {"phase": "done", "cases_done": 2, "cases_total": 2, "files": done["counts"]["files"]}
    assert done["spec_id"] == "totalsegmentator-v2" and done["submitted_by"] == "ci" and done["diff"] is None


def test_every_report_format_of_a_finished_check(client: TestClient) -> None:
    job = finished(client, submit(client, path="small", subset=True))
    assert set(job["reports"]) == {"report.json", "report.html", "junit.xml", "report.sarif"}
    got = {name: client.get(url, headers=READ) for name, url in job["reports"].items()}
    assert all(r.status_code == 200 for r in got.values())
    report = Report.model_validate_json(got["report.json"].content)
    assert report.summary.by_code["GEOM_AFFINE_MISMATCH"] == 1 and report.subset
    assert got["report.html"].headers["content-type"].startswith("text/html")
    assert "GEOM_AFFINE_MISMATCH" in got["report.html"].text
    suites = ET.fromstring(got["junit.xml"].content)
    assert suites.tag == "testsuites" and int(suites.get("failures")) >= 1
    sarif = got["report.sarif"].json()
    assert sarif_problems(sarif) == []
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"GEOM_AFFINE_MISMATCH"}
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]
            for loc in r["locations"]]
    assert all(u.startswith("small/") for u in uris), "SARIF paths are relative to the root"


def test_a_report_is_kept_in_the_roots_history_with_its_index(client: TestClient, config) -> None:
    job = finished(client, submit(client, path="small", subset=True))
    name = f"{config.roots['store'].path.name}~2Fsmall"  # the root's folder and the sub-path
    run = config.reports / "store" / "totalsegmentator-v2" / name
    assert (run / "latest.json").is_file() and json.loads((run / "latest.json").read_text())["run"]
    assert (config.reports / "store" / "index.html").is_file()
    latest = json.loads((run / "latest.json").read_text())["run"]
    page = client.get(f"/reports/store/totalsegmentator-v2/{name}/{latest}/report.html", headers=READ)
    assert page.status_code == 200 and job["id"]


def test_sub_paths_that_differ_only_in_unsafe_characters_keep_histories_of_their_own(
        make_config, store: Path, tmp_path: Path) -> None:
    paths = ("a b", "a_b", "p/q", "p--q", "named", "")  # "named" is also the root folder's name; "" the whole root
    for path in paths[:-1]:
        shutil.copytree(store / "small", tmp_path / "named" / path)
    with TestClient(create_app(make_config({"named": tmp_path / "named"}))) as client:
        jobs = [submit(client, root="named", path=path, subset=True, mode="quick", spec=SPEC) for path in paths]
        assert all(finished(client, job)["state"] == "finished" for job in jobs)
        runs = [Path(JobStore(client.app.state.config.db).get(job).run).parent for job in jobs]
    assert [run.name for run in runs] == ["named~2Fa~20b", "named~2Fa_b", "named~2Fp~2Fq", "named~2Fp--q",
                                          "named~2Fnamed", "named"]


def test_a_report_page_fetched_through_the_api_links_to_files_that_are_served(client: TestClient) -> None:
    job = finished(client, submit(client, path="small", subset=True))
    page = client.get(job["reports"]["report.html"], headers=READ).text
    base = re.search(r'<base href="([^"]+)">', page).group(1)
    links = re.findall(r'(?:href|src)="((?:\.\./)*index\.html|evidence/[^"]+)"', page)
    assert any(link.endswith("index.html") for link in links)
    for link in links:
        assert client.get(urljoin(base, link), headers=READ).status_code == 200, link


def test_the_history_gives_each_check_its_diff_to_the_previous_one(client: TestClient) -> None:
    first = finished(client, submit(client, path="small", subset=True))
    second = finished(client, submit(client, path="small", subset=True))
    history = client.get("/api/v1/roots/store/history", headers=READ).json()
    assert [c["id"] for c in history["checks"]][:2] == [second["id"], first["id"]]
    diff = history["checks"][0]["diff"]
    assert diff["previous"] == first["id"] and diff["new"] == 0 and diff["fixed"] == 0 and diff["unchanged"] >= 1
    got = client.get(diff["links"]["diff.json"], headers=READ)
    assert ReportDiff.model_validate_json(got.content).summary.unchanged == diff["unchanged"]
    assert client.get(diff["links"]["diff.html"], headers=READ).status_code == 200
    assert "unchanged" in client.get(diff["links"]["diff.md"], headers=READ).text
    assert history["checks"][1]["diff"] is None


def test_roots_list_their_latest_verdict_and_active_checks(client: TestClient) -> None:
    job = finished(client, submit(client, path="small", subset=True, mode="quick"))
    roots = {r["id"]: r for r in client.get("/api/v1/roots", headers=READ).json()}
    assert set(roots) == {"store", "other"}
    assert roots["store"]["latest"]["id"] == job["id"] and roots["store"]["kind"] == "folder"
    assert roots["other"]["latest"] is None and roots["other"]["active"] == []


def test_specs_lists_the_built_in_specs_and_an_unknown_spec_is_refused(client: TestClient) -> None:
    specs = {s["id"] for s in client.get("/api/v1/specs", headers=READ).json()}
    assert {"totalsegmentator-v1", "totalsegmentator-v2", "totalsegmentator-v3"} <= specs
    response = client.post("/api/v1/checks", json={"root": "store", "spec": "nope"}, headers=SUBMIT)
    assert response.status_code == 400 and "unknown spec" in response.json()["detail"]


@pytest.fixture
def two_at_once(make_config, store) -> TestClient:
    with TestClient(create_app(make_config({"store": store, "other": store / "small"}, parallel_checks=2))) as client:
        yield client


def test_one_check_runs_per_root_and_the_next_waits_its_turn(two_at_once: TestClient) -> None:
    client = two_at_once
    slow = submit(client, path="slow", subset=True)
    queued = submit(client, path="small", subset=True)
    other = client.post("/api/v1/checks", json={"root": "other", "subset": True}, headers=SUBMIT).json()["id"]
    wait_until(lambda: status(client, slow)["state"] == "running")
    assert status(client, queued)["state"] == "queued"
    finished(client, other)  # another root does not wait for this one's running check
    assert status(client, slow)["state"] == "running" and status(client, queued)["state"] == "queued"
    client.delete(f"/api/v1/checks/{slow}", headers=SUBMIT)
    assert finished(client, queued)["state"] == "finished"


def test_cancelling_a_queued_check_cancels_it_before_it_starts(client: TestClient) -> None:
    slow = submit(client, path="slow", subset=True)
    queued = submit(client, path="small", subset=True)
    response = client.delete(f"/api/v1/checks/{queued}", headers=SUBMIT)
    assert response.status_code == 202 and response.json()["state"] == "cancelled"
    assert status(client, queued)["started"] is None
    client.delete(f"/api/v1/checks/{slow}", headers=SUBMIT)


def test_cancelling_a_running_check_stops_its_process_promptly(client: TestClient, config) -> None:
    job_id = submit(client, path="slow", subset=True)
    wait_until(lambda: status(client, job_id)["progress"]["cases_done"] > 0)
    pid = JobStore(config.db).get(job_id).pid
    response = client.delete(f"/api/v1/checks/{job_id}", headers=SUBMIT)
    assert response.status_code == 202
    done = finished(client, job_id, timeout=5)
    assert done["state"] == "cancelled" and done["reason"] == "cancelled while it ran" and done["reports"] == {}
    # its pool's workers too: SIGKILLed processes end within moments (zombies count as ended: init reaps them late)
    wait_until(lambda: process_group(pid) == [], timeout=5)
    assert client.delete(f"/api/v1/checks/{job_id}", headers=SUBMIT).status_code == 409


def test_a_restart_fails_the_running_check_with_the_reason_and_runs_the_queued_one(config) -> None:
    with TestClient(create_app(config)) as client:
        running = submit(client, path="slow", subset=True)
        queued = submit(client, path="small", subset=True)
        wait_until(lambda: status(client, running)["state"] == "running")
    store = JobStore(config.db)
    assert store.get(running).state == "failed" and store.get(running).reason == INTERRUPTED
    assert store.get(queued).state == "queued"
    with TestClient(create_app(config)) as client:
        assert finished(client, queued)["state"] == "finished"
        assert status(client, running)["state"] == "failed"


def test_without_a_worker_checks_stay_queued_and_a_restart_with_one_runs_them(config) -> None:
    with TestClient(create_app(config, worker=False)) as client:
        job_id = submit(client, path="small", subset=True)
        assert client.get("/api/v1/healthz").json() == {"status": "degraded", "worker": False}
    with TestClient(create_app(config)) as client:
        assert finished(client, job_id)["state"] == "finished"


def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/api/v1/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "worker": True}


@pytest.mark.parametrize("headers", [{}, bearer("not-a-token"), {"Authorization": "Basic c3VibWl0"},
                                     {"Authorization": "Bearer"}, bearer(SUBMIT_TOKEN + "x"), bearer("x" * 5000)],
                         ids=["missing", "wrong", "basic", "empty", "longer", "huge"])
@pytest.mark.parametrize("method,url", [("GET", "/api/v1/roots"), ("GET", "/api/v1/checks"),
                                        ("POST", "/api/v1/checks"), ("GET", "/api/v1/specs"),
                                        ("GET", "/api/v1/openapi.json"), ("GET", "/docs")])
def test_a_missing_or_wrong_token_gets_401(idle_client: TestClient, headers: dict, method: str, url: str) -> None:
    response = idle_client.request(method, url, headers=headers, json={"root": "store"} if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_read_token_reads_but_cannot_submit_or_cancel(client: TestClient) -> None:
    job_id = submit(client, path="small", subset=True)
    assert client.get(f"/api/v1/checks/{job_id}", headers=READ).status_code == 200
    assert client.get("/api/v1/roots", headers=READ).status_code == 200
    refused = client.post("/api/v1/checks", json={"root": "store"}, headers=READ)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert client.delete(f"/api/v1/checks/{job_id}", headers=READ).status_code == 403
    assert len(client.get("/api/v1/checks", headers=READ).json()) == 1


def test_unknown_checks_and_roots_are_404_and_malformed_ids_422(client: TestClient) -> None:
    assert client.get(f"/api/v1/checks/{'0' * 32}", headers=READ).status_code == 404
    assert client.get("/api/v1/checks/..%2f..%2fetc", headers=READ).status_code in (404, 422)
    assert client.get("/api/v1/roots/nope/history", headers=READ).status_code == 404
    assert client.post("/api/v1/checks", json={"root": "nope"}, headers=SUBMIT).status_code == 404


def test_reports_of_an_unfinished_check_are_404(client: TestClient) -> None:
    job_id = submit(client, path="slow", subset=True)
    assert client.get(f"/api/v1/checks/{job_id}/report.json", headers=READ).status_code == 404
    client.delete(f"/api/v1/checks/{job_id}", headers=SUBMIT)


def test_unknown_fields_and_bad_values_in_a_request_are_422(idle_client: TestClient) -> None:
    for body in ({"root": "store", "extra": 1}, {"root": "store", "mode": "fast"}, {"path": "x"},
                 {"root": "store", "path": "x" * 2000}):
        assert idle_client.post("/api/v1/checks", json=body, headers=SUBMIT).status_code == 422, body


def test_request_bodies_over_the_limit_are_refused_with_413(client: TestClient) -> None:
    big = json.dumps({"root": "store", "path": "a" * 70_000}).encode()
    assert client.post("/api/v1/checks", content=big, headers={**SUBMIT, "Content-Type": "application/json"}
                       ).status_code == 413

    def chunks():
        yield big[:40_000]
        yield big[40_000:]

    assert client.post("/api/v1/checks", content=chunks(), headers={**SUBMIT, "Content-Type": "application/json"}
                       ).status_code == 413
    assert client.get("/api/v1/checks", headers=READ).json() == []


def test_no_cors_headers_by_default(idle_client: TestClient) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = idle_client.options("/api/v1/checks", headers={**origin, "Access-Control-Request-Method": "POST"})
    got = idle_client.get("/api/v1/roots", headers={**READ, **origin})
    assert "access-control-allow-origin" not in preflight.headers and "access-control-allow-origin" not in got.headers


def test_configured_cors_origins_are_allowed(make_config, store) -> None:
    config = make_config({"store": store}, cors_origins=["https://ci.example"])
    with TestClient(create_app(config, worker=False)) as client:
        got = client.get("/api/v1/roots", headers={**READ, "Origin": "https://ci.example"})
        other = client.get("/api/v1/roots", headers={**READ, "Origin": "https://elsewhere.example"})
    assert got.headers["access-control-allow-origin"] == "https://ci.example"
    assert "access-control-allow-origin" not in other.headers


def test_an_internal_error_answers_500_without_a_trace(config, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(JobStore, "jobs", broken)
    with TestClient(create_app(config, worker=False), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/checks", headers=READ)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the service log has the details"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_responses_carry_the_security_headers(idle_client: TestClient) -> None:
    response = idle_client.get("/api/v1/roots", headers=READ)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_the_openapi_document_and_docs_need_a_token_and_load_nothing_from_a_cdn(idle_client: TestClient) -> None:
    client = idle_client
    spec = client.get("/api/v1/openapi.json", headers=READ).json()
    assert {"/api/v1/checks", "/api/v1/checks/{job_id}", "/api/v1/roots", "/api/v1/healthz"} <= set(spec["paths"])
    docs = client.get("/docs", headers=READ)
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    asset = client.get("/docs-assets/swagger-ui-bundle.js", headers=READ)
    assert asset.status_code == 200 and len(asset.content) > 100_000


def test_logs_name_tokens_never_their_value(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    finished(client, submit(client, path="small", subset=True))
    client.get("/api/v1/roots", headers=bearer("wrong-secret-value"))
    text = caplog.text
    assert "queued by ci" in text and "refused GET /api/v1/roots" in text
    assert SUBMIT_TOKEN not in text and READ_TOKEN not in text and "wrong-secret-value" not in text


def test_the_committed_openapi_document_is_the_one_the_service_serves(client: TestClient) -> None:
    served = client.get("/api/v1/openapi.json", headers=READ).json()
    committed = json.loads((REPO / "schemas" / "openapi.json").read_text())
    assert served == committed == api_document(), \
        "regenerate with: python -m qa.app.serve.openapi > schemas/openapi.json"


SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "cache-control",
                    "content-security-policy")
EARLY = {  # each refusal, and the layer that makes it
    400: ("POST", "/api/v1/checks", {"json": {"root": "store", "path": "../outside"}, "headers": SUBMIT}),  # the route
    401: ("GET", "/api/v1/roots", {}),  # the token dependency
    404: ("GET", "/nowhere", {"headers": READ}),  # the router
    405: ("PUT", "/api/v1/roots", {"headers": READ}),  # the router
    413: ("POST", "/api/v1/checks", {"content": b"{" * 70_000, "headers": SUBMIT}),  # the body limit middleware
    422: ("POST", "/api/v1/checks", {"content": b"{not json",
                                     "headers": {**SUBMIT, "Content-Type": "application/json"}}),  # FastAPI's parser
}


@pytest.mark.parametrize("code", sorted(EARLY))
def test_every_refusal_carries_the_security_headers_of_every_other_response(idle_client: TestClient,
                                                                             code: int) -> None:
    method, url, options = EARLY[code]
    response = idle_client.request(method, url, **options)
    ok = idle_client.get("/api/v1/roots", headers=READ)
    assert response.status_code == code, response.text
    assert {h: response.headers.get(h) for h in SECURITY_HEADERS} == {h: ok.headers[h] for h in SECURITY_HEADERS}


def test_an_internal_error_carries_the_security_headers(config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobStore, "jobs", lambda *args, **kwargs: 1 / 0)
    with TestClient(create_app(config, worker=False), raise_server_exceptions=False) as client:
        response, ok = client.get("/api/v1/checks", headers=READ), client.get("/api/v1/roots", headers=READ)
    assert response.status_code == 500
    assert {h: response.headers.get(h) for h in SECURITY_HEADERS} == {h: ok.headers[h] for h in SECURITY_HEADERS}


def test_a_check_whose_folder_fits_no_spec_fails_with_the_reason(client: TestClient) -> None:
    done = finished(client, submit(client, subset=True))  # the store holds releases; it is none itself
    assert done["state"] == "failed"
    assert done["reason"].startswith("no release here: no meta.csv and no case folders (sXXXX/) in store")
    small = finished(client, submit(client, path="small", subset=True))
    assert small["state"] == "finished", "the worker carries on"
