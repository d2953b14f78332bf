"""The UI in a real browser against a real `tsqa serve`: sign in, start a check from the form, watch it finish,
open its report; nothing is loaded from anywhere but the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from serve_support import SUBMIT_TOKEN, Served, write_config
from support import chromium


@pytest.fixture(scope="module")
def served(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("browser")
    server = Served(write_config(base / "tsqa-serve.yaml", {"store": store}, base / "data"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_start_a_check_from_the_ui_watch_it_finish_and_open_its_report(browser, served: Served,
                                                                       tmp_path_factory) -> None:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)

    page.goto(served.url + "/")
    assert urlsplit(page.url).path == "/login"
    page.fill("#token", SUBMIT_TOKEN)
    page.click("#sign-in")
    page.wait_for_selector("table.roots")
    cookie = next(c for c in context.cookies() if c["name"] == "tsqa_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != SUBMIT_TOKEN

    page.select_option("#root", "store")
    page.fill("#path", "small")
    page.check("#subset")
    page.click("#start-check")
    page.wait_for_selector("#check")
    assert urlsplit(page.url).path.startswith("/ui/checks/")
    page.wait_for_selector("#verdict", timeout=90_000)  # the page polls the API, then shows the result
    assert page.inner_text("#state") == "finished" and page.inner_text("#verdict") == "FAIL"
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "serve-check.png"), full_page=True)

    page.click("#open-report")
    page.wait_for_selector("#findings-body tr")
    assert "GEOM_AFFINE_MISMATCH" in page.inner_text("body")
    assert page.inner_text("#verdict") == "FAIL"
    page.goto(served.url + "/")
    page.screenshot(path=str(shots / "serve-home.png"), full_page=True)
    print(f"\nscreenshots of the UI: {shots}")
    assert errors == []
    assert hosts == {urlsplit(served.url).netloc}, "nothing but the service is asked for anything"
    context.close()
