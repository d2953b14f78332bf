"""report.html in a real browser: headless Chromium opens it from disk, asks no network, and its filters work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import chromium

from qa.app.cli import main
from qa.output.html.page import write_html
from qa.output.runs import latest_run
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.synth.sample import make_sample

SPEC = "totalsegmentator-v2"
FAULTS = ["GEOM_AFFINE_MISMATCH", "LABEL_OVERLAP", "META_VALUE", "FILE_UNEXPECTED", "LABEL_VALUES", "FILE_MISSING"]


@dataclass
class Opened:
    """A page as the browser loaded it, with what it logged and what it asked for."""

    page: object
    url: str
    report: Report
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    """A 3-case sample with six kinds of fault, checked by `tsqa check` into the default history,
    reports/<spec id>/<release>/<run>/."""
    root = tmp_path_factory.mktemp("browser")
    sample = make_sample(root / "release", load_spec(SPEC), cases=3, faults=FAULTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["check", str(sample.root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1"]) == 1
    out = latest_run(root / "reports" / SPEC / "release")
    return out, Report.model_validate_json((out / "report.json").read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def open_page(browser, path: Path, report: Report) -> Opened:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    opened = Opened(page=page, url=path.resolve().as_uri(), report=report)
    page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.console_errors.append(str(e)))
    page.on("request", lambda r: opened.requests.append(r.url))
    # Anything but the page itself is refused, so a stray request shows up here instead of reaching the network.
    context.route("**/*", lambda route: route.continue_() if route.request.url == opened.url else route.abort())
    page.goto(opened.url)
    page.wait_for_load_state("load")
    return opened


@pytest.fixture(scope="module")
def opened(browser, checked) -> Opened:
    out, report = checked
    return open_page(browser, out / "report.html", report)


def flagged_cases(report: Report) -> set[str]:
    return {f.case for f in report.findings if f.case is not None}


def test_page_opens_from_disk_without_console_errors_or_network_requests(opened: Opened) -> None:
    assert opened.console_errors == []
    assert opened.requests == [opened.url]


def test_every_finding_code_and_every_flagged_case_is_on_the_page(opened: Opened) -> None:
    text = opened.page.inner_text("body")
    wanted = {"GEOM_AFFINE_MISMATCH", "LABEL_OVERLAP", "LABEL_VALUES", "FILE_MISSING"}
    assert set(opened.report.summary.by_code) >= wanted
    for code in opened.report.summary.by_code:
        assert code in text, code
    shown = set(opened.page.locator("#cases-body tr.case-row").evaluate_all("rows => rows.map(r => r.dataset.case)"))
    assert flagged_cases(opened.report) <= shown


def test_filtering_by_one_code_leaves_only_its_rows(opened: Opened) -> None:
    page = opened.page
    try:
        for code, count in opened.report.summary.by_code.items():
            page.select_option("#f-code", code)
            codes = page.locator("#findings-body tr").evaluate_all("rows => rows.map(r => r.dataset.code)")
            assert codes == [code] * count
    finally:
        page.click("#f-clear")
    assert page.locator("#findings-body tr").count() == len(opened.report.findings)


def test_searching_the_findings_narrows_them_to_the_matching_case(opened: Opened) -> None:
    page = opened.page
    case = sorted(flagged_cases(opened.report))[0]
    try:
        page.select_option("#f-case", case)
        cases = page.locator("#findings-body tr").evaluate_all("rows => rows.map(r => r.dataset.case)")
        assert cases == [case] * sum(f.case == case for f in opened.report.findings)
    finally:
        page.click("#f-clear")


def test_clicking_a_case_shows_its_meta_row_and_present_classes(opened: Opened) -> None:
    page = opened.page
    case = next(c for c in opened.report.cases if c.labels)
    present = sum(1 for stats in case.labels.values() if stats.voxels > 0)
    page.click(f"#cases-body tr.case-row[data-case='{case.case}']")
    detail = page.inner_text(f"#case-{case.case}")
    assert f"classes present ({present})" in detail
    assert f"findings ({case.findings})" in detail
    assert all(value in detail for value in case.meta.values() if value)
    page.click(f"#cases-body tr.case-row[data-case='{case.case}']")


def test_screenshot_for_a_person_to_look_at(opened: Opened, tmp_path_factory: pytest.TempPathFactory) -> None:
    shots = tmp_path_factory.getbasetemp() / "reports" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / "report.png"
    opened.page.evaluate("document.querySelectorAll('details.group').forEach(d => d.open = true); "
                         "window.scrollTo(0, 0)")
    opened.page.screenshot(path=str(path), full_page=True)
    print(f"\nscreenshot of report.html: {path}")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert opened.console_errors == []


def test_index_page_links_the_report_and_opens_cleanly(browser, checked) -> None:
    out, report = checked
    index = open_page(browser, out.parents[2] / "index.html", report)
    assert index.console_errors == [] and index.requests == [index.url]
    assert index.page.get_attribute("table.runs a", "href") == f"{SPEC}/release/{out.name}/report.html"
    page = open_page(browser, out / "report.html", report)
    assert page.page.eval_on_selector("header a", "a => a.href") == index.url, "the report links back to the index"


def test_page_of_a_clean_release_opens_without_errors(browser, tmp_path: Path) -> None:
    sample = make_sample(tmp_path / "release", load_spec(SPEC), cases=1)
    out = tmp_path / SPEC
    args = ["check", str(sample.root), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--out", str(out)]
    assert main(args) == 0
    clean = open_page(browser, out / "report.html", Report.model_validate_json((out / "report.json").read_text()))
    assert clean.console_errors == [] and clean.requests == [clean.url]
    assert clean.page.inner_text("#verdict") == "PASS"
    assert clean.page.locator("#cases-body tr.case-row").count() == 1


def test_info_findings_of_a_large_release_wait_until_asked_for_then_join_the_table(browser, checked,
                                                                                   tmp_path: Path) -> None:
    """Past INLINE_INFO info findings the table opens with the errors and warnings; the button, or a filter that
    may match info findings, adds them."""
    out, report = checked
    added = [f.model_copy(update={"severity": "info", "code": "LABEL_TRUNCATED", "fingerprint": f"i{k}"})
             for k, f in enumerate(report.findings)]
    with_info = report.model_copy(update={"findings": report.findings + added})
    info = [f for f in with_info.findings if f.severity == "info"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("qa.output.html.page.INLINE_INFO", 0)
        page_file = write_html(with_info, out, tmp_path)
    opened = open_page(browser, page_file, with_info)
    page = opened.page
    loud = [f for f in with_info.findings if f.severity != "info"]
    assert page.locator("#findings-body tr").count() == min(len(loud), 100)
    assert "LABEL_TRUNCATED" in page.inner_text("#info-counts")
    page.click("#info-load")
    assert page.locator("#info-note").count() == 0
    page.select_option("#f-severity", "info")
    assert page.locator("#findings-body tr").count() == min(len(info), 100)
    assert not opened.console_errors and opened.requests == [opened.url]
    filtered = open_page(browser, page_file, with_info)
    filtered.page.select_option("#f-code", "LABEL_TRUNCATED")
    truncated = sum(f.code == "LABEL_TRUNCATED" for f in with_info.findings)
    assert filtered.page.locator("#findings-body tr").count() == min(truncated, 100)
