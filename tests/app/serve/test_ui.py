"""The web UI in-process: a sign-in kept in an HttpOnly, SameSite=Strict cookie, forms refused from other sites or
without the session's CSRF token, the pages of roots, checks and histories."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from serve_support import DONE, READ_TOKEN, SUBMIT_TOKEN, wait_until

from qa.app.serve.store import JobStore


def sign_in(client: TestClient, token: str = SUBMIT_TOKEN) -> str:
    """Sign in through the form; the CSRF token of the session (from the home page)."""
    response = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    home = client.get("/")
    return re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)


def test_pages_need_a_sign_in(idle_client: TestClient) -> None:
    response = idle_client.get("/ui/roots/store", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/ui/roots/store"
    assert "API token" in idle_client.get("/login").text


def test_the_session_cookie_is_httponly_and_samesite_strict(idle_client: TestClient) -> None:
    response = idle_client.post("/login", data={"token": READ_TOKEN}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tsqa_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert READ_TOKEN not in cookie
    idle_client.cookies.clear()


def test_a_wrong_token_is_refused_and_sets_no_cookie(idle_client: TestClient) -> None:
    response = idle_client.post("/login", data={"token": "wrong"}, follow_redirects=False)
    assert response.status_code == 401 and "not valid" in response.text and "set-cookie" not in response.headers


def test_sign_in_sends_back_only_to_a_page_of_this_service(idle_client: TestClient) -> None:
    response = idle_client.post("/login", data={"token": READ_TOKEN, "next": "//evil.example/x"},
                                follow_redirects=False)
    assert response.headers["location"] == "/"
    idle_client.cookies.clear()


def test_a_read_token_sees_the_roots_but_no_form_to_start_a_check(idle_client: TestClient) -> None:
    sign_in(idle_client, READ_TOKEN)
    home = idle_client.get("/")
    assert 'data-root="store"' in home.text and 'id="start"' not in home.text
    idle_client.cookies.clear()


def test_a_form_post_without_the_csrf_token_or_from_another_origin_is_refused(client: TestClient, config) -> None:
    csrf = sign_in(client)
    form = {"root": "store", "path": "small", "mode": "quick", "subset": "on"}
    assert client.post("/ui/checks", data=form, follow_redirects=False).status_code == 403
    assert client.post("/ui/checks", data={**form, "csrf": "forged"}, follow_redirects=False).status_code == 403
    assert client.post("/ui/checks", data={**form, "csrf": csrf}, headers={"Origin": "https://evil.example"},
                       follow_redirects=False).status_code == 403
    assert JobStore(config.db).jobs() == []


def test_the_api_takes_the_cookie_for_reading_only(client: TestClient, config) -> None:
    sign_in(client)
    assert client.get("/api/v1/roots").status_code == 200
    assert client.post("/api/v1/checks", json={"root": "store"}).status_code == 401
    assert JobStore(config.db).jobs() == []


def test_a_form_with_a_path_out_of_the_root_says_why_and_starts_nothing(client: TestClient, config) -> None:
    csrf = sign_in(client)
    response = client.post("/ui/checks", data={"root": "store", "path": "../x", "csrf": csrf})
    assert response.status_code == 400 and "must not contain &#39;..&#39;" in response.text
    assert JobStore(config.db).jobs() == []


def test_starting_a_check_from_the_form_leads_to_its_page_and_history(client: TestClient, config) -> None:
    csrf = sign_in(client)
    response = client.post("/ui/checks", data={"root": "store", "path": "small", "mode": "quick", "subset": "on",
                                                "csrf": csrf, "spec": ""}, follow_redirects=False)
    assert response.status_code == 303
    job_id = response.headers["location"].rsplit("/", 1)[1]
    wait_until(lambda: JobStore(config.db).get(job_id).state in DONE)
    page = client.get(f"/ui/checks/{job_id}").text
    assert 'id="verdict"' in page and "FAIL" in page and 'id="open-report"' in page
    report = re.search(r'href="(/reports/[^"]+/report.html)"', page).group(1)
    assert client.get(report).status_code == 200
    history = client.get("/ui/roots/store").text
    assert f'data-check="{job_id}"' in history and "first check" in history
    assert client.get("/reports/store/index.html").status_code == 200


def test_ui_pages_run_only_their_own_script(client: TestClient) -> None:
    sign_in(client)
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    script = csp.split("script-src")[1].split(";")[0]
    assert script.strip().startswith("'nonce-") and "unsafe" not in script and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("path", ["/", "/ui/roots/store", f"/ui/checks/{'0' * 32}"])
def test_signing_out_ends_the_session(client: TestClient, path: str) -> None:
    csrf = sign_in(client)
    key = client.cookies.get("tsqa_session")
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("tsqa_session", key)
    assert client.get(path, follow_redirects=False).status_code == 303
