"""The HTML report: what each section shows for a report built in code, its size at 10,000 findings, history."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from qa.app.cli import main
from qa.output.html.figures import FLAGGED as FLAGGED_FILL
from qa.output.html.figures import ClassSeries, class_distributions_figure, numbers_figure
from qa.output.html.history import publish_html, read_entries, write_index
from qa.output.html.page import FINDING_COLUMNS, build_page, class_series, render_html, render_page
from qa.output.json import write_report
from qa.report.model import (
    CaseReport,
    ClassStats,
    DriftStats,
    ImageSummary,
    LabelStats,
    OverlapStats,
    Report,
    SpecSnapshot,
    summarize,
)
from qa.rules.codes import CODES
from qa.rules.finding import Finding, fingerprint
from qa.rules.spec import load_spec

SPEC = "totalsegmentator-v2"
STARTED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
# A page that lists 10,000 findings (and the 1,000 cases they name) must stay a file that a browser opens at once.
TEN_THOUSAND_FINDINGS_MAX_BYTES = 4_000_000


class Links(HTMLParser):
    """Every src and href attribute of a page, as a browser's parser sees them (script text is not markup)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def mask(case: str, name: str) -> str:
    return f"{case}/segmentations/{name}.nii.gz"


def made(code: str, severity: str, case: str | None, path: str | None, message: str, class_name: str | None,
         details: dict) -> Finding:
    return Finding(code=code, severity=severity, case=case, path=path, class_name=class_name, message=message,
                   details=details, fingerprint=fingerprint(code, None, case, path, class_name))


def error(code: str, case: str | None, path: str | None, message: str = "broken", class_name: str | None = None,
          **details) -> Finding:
    return made(code, "error", case, path, message, class_name, details)


def warning(code: str, case: str | None, path: str | None, message: str = "odd", class_name: str | None = None,
            **details) -> Finding:
    return made(code, "warning", case, path, message, class_name, details)


def case_report(
    case: str, split: str = "train", labels: dict[str, LabelStats] | None = None, **meta: str
) -> CaseReport:
    return CaseReport(case=case, split=split, meta={"image_id": case, "split": split, **meta},
                      image=ImageSummary(shape=[48, 40, 64], spacing=[1.5, 1.5, 1.5], axcodes=["R", "A", "S"],
                                         dtype="int16",
                                         affine=[[1.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 1.5, 0], [0, 0, 0, 1]]),
                      labels=labels)


def label(voxels: int) -> LabelStats:
    return LabelStats(voxels=voxels, volume_ml=voxels * 0.003375, mean_hu=40.0 if voxels else None,
                      bbox=[[1, 1, 1], [4, 4, 4]] if voxels else None, centroid_mm=[1.0, 2.0, 3.0] if voxels else None)


def make_report(findings: list[Finding], cases: list[CaseReport], release: str = "/nonexistent/release",
                mode: str = "quick", fail_on: str = "error", started: datetime = STARTED, **deep) -> Report:
    return Report(version="0.1.0", spec_id=SPEC, spec=SpecSnapshot.of(load_spec(SPEC)),
                  spec_reason="given: --spec totalsegmentator-v2", release=release,
                  mode=mode, subset=False, started=started, duration_s=1.25,
                  summary=summarize(findings, len(cases), 118 * len(cases), fail_on), findings=findings, cases=cases,
                  **deep)


@pytest.fixture
def faulty() -> Report:
    """A quick-mode report of three cases: two errors in s0002, a warning in s0001, one release-level error."""
    findings = [
        error("GEOM_AFFINE_MISMATCH", "s0002", mask("s0002", "liver"), "liver.nii.gz: affine differs by 0.5 mm",
              class_name="liver", max_deviation_mm=0.5),
        error("FILE_MISSING", "s0002", mask("s0002", "spleen"), "spleen.nii.gz is missing", class_name="spleen"),
        warning("FILE_UNEXPECTED", "s0001", mask("s0001", "._liver"), "macOS junk"),
        error("META_SPLIT_COUNTS", None, "meta.csv", "split sizes differ"),
    ]
    cases = [case_report("s0000", age="54", gender="f"), case_report("s0001", age="61", gender="m"),
             case_report("s0002", "test", age="70", gender="m")]
    return make_report(findings, cases)


def test_page_says_fail_when_a_finding_reaches_the_fail_on_level(faulty: Report) -> None:
    page = build_page(faulty, drawings=False)
    assert page.verdict == "FAIL"
    assert '<span class="verdict FAIL" id="verdict">FAIL</span>' in render_page(page)


def test_page_says_pass_when_only_warnings_and_failing_on_errors() -> None:
    report = make_report([warning("FILE_UNEXPECTED", "s0000", "s0000/.DS_Store")], [case_report("s0000")])
    assert build_page(report, drawings=False).verdict == "PASS"


def test_glance_shows_counts_by_severity_and_the_worst_cases(faulty: Report) -> None:
    page = build_page(faulty, drawings=False)
    html = render_page(page)
    assert re.search(r'id="count-error"><b>3</b>', html)
    assert re.search(r'id="count-warning"><b>1</b>', html)
    assert [(c.case, c.errors, c.warnings) for c in page.worst] == [("s0002", 2, 0), ("s0001", 0, 1)]


def test_findings_are_grouped_by_code_with_the_explain_text(faulty: Report) -> None:
    page = build_page(faulty, drawings=False)
    groups = {g.code: g for g in page.groups}
    assert set(groups) == {"GEOM_AFFINE_MISMATCH", "FILE_MISSING", "FILE_UNEXPECTED", "META_SPLIT_COUNTS"}
    assert page.groups[-1].code == "FILE_UNEXPECTED", "errors come before warnings"
    for code, group in groups.items():
        assert (group.title, group.what, group.why, group.fix) == (CODES[code].title, CODES[code].what, CODES[code].why,
                                                                   CODES[code].fix)
    html = render_page(page)
    assert "Copy the image&#39;s header (sform, qform with its code, pixdim) into the mask&#39;s" in html


def test_class_filter_offers_the_classes_findings_name(faulty: Report) -> None:
    assert build_page(faulty, drawings=False).filters.classes == ["liver", "spleen"]


def test_findings_blob_names_each_finding_with_its_class(faulty: Report) -> None:
    blob = json.loads(build_page(faulty, drawings=False).findings_json)
    rows = [dict(zip(FINDING_COLUMNS, row)) for row in blob["rows"]]
    assert {(blob["codes"][r["code"]], r["case"], r["class"]) for r in rows} == {
        ("GEOM_AFFINE_MISMATCH", "s0002", "liver"), ("FILE_MISSING", "s0002", "spleen"),
        ("FILE_UNEXPECTED", "s0001", None), ("META_SPLIT_COUNTS", None, None)}
    assert [blob["severities"][r["severity"]] for r in rows] == ["error", "error", "error", "warning"]


def test_cases_show_the_classes_their_masks_contain() -> None:
    cases = [case_report("s0000", labels={"liver": label(120), "spleen": label(0), "aorta": label(7)}),
             case_report("s0001", labels={"liver": label(0), "spleen": label(0), "aorta": label(0)})]
    page = build_page(make_report([], cases, mode="deep"), drawings=False)
    assert {c.case: c.present for c in page.cases} == {"s0000": ["aorta", "liver"], "s0001": []}
    blob = json.loads(page.cases_json)
    shown = {c["case"]: c["present"] for c in blob["rows"]}
    assert [(blob["classes"][k], ml) for k, ml in shown["s0000"]] == [("aorta", 0.0236), ("liver", 0.405)]


def test_quick_report_says_the_deep_pass_measures_classes(faulty: Report) -> None:
    page = build_page(faulty, drawings=False)
    assert [c.present for c in page.cases] == [None, None, None]
    html = render_page(page)
    assert "Per-class volumes and intensities come from the deep pass" in html
    assert "Overlaps are measured by the deep pass." in html


def test_deep_report_shows_class_volumes_and_overlapping_pairs() -> None:
    classes = [ClassStats(name="liver", cases_present=2, cases_checked=2, volume_ml_median=1500.0, volume_ml_q1=1400.0,
                          volume_ml_q3=1700.0, mean_hu_median=55.0),
               ClassStats(name="adrenal_gland_left", cases_present=1, cases_checked=2, volume_ml_median=4.0,
                          volume_ml_q1=4.0, volume_ml_q3=4.0, mean_hu_median=30.0)]
    overlaps = [OverlapStats(class_a="liver", class_b="gallbladder", cases=1, voxels=250, volume_ml=0.84,
                             max_share=0.12)]
    report = make_report([], [case_report("s0000"), case_report("s0001")], mode="deep", classes=classes,
                         overlaps=overlaps)
    page = build_page(report, drawings=False)
    liver, adrenal = page.classes
    assert (liver.share, adrenal.share) == (1.0, 0.5)
    assert page.volume_decades == (0.0, 4.0)
    assert adrenal.bar.median < liver.bar.median
    html = render_page(page)
    assert "gallbladder" in html and "12.0%" in html


def test_split_counts_are_compared_with_the_spec(faulty: Report) -> None:
    rows = {r.split: (r.found, r.expected, r.differs) for r in build_page(faulty, drawings=False).splits}
    assert rows == {"train": (2, 1082, True), "val": (0, 57, True), "test": (1, 89, True)}


def test_meta_columns_are_summarised_as_numbers_or_as_common_values(faulty: Report) -> None:
    columns = {c.name: c for c in build_page(faulty, drawings=False).columns}
    assert "image_id" not in columns
    assert (columns["age"].spread.low, columns["age"].spread.median, columns["age"].spread.high) == (54, 61, 70)
    assert [(v.value, v.count) for v in columns["gender"].top] == [("m", 2), ("f", 1)]


def test_page_draws_the_geometry_and_numeric_meta_distributions(faulty: Report) -> None:
    figures = build_page(faulty).figures
    assert [f.title for f in figures] == ["Voxel spacing and grid size", "Numeric meta.csv columns"]
    assert all(f.svg.startswith("<svg ") and f.svg.endswith("</svg>") for f in figures)


def test_page_has_no_external_urls_even_when_findings_quote_them() -> None:
    report = make_report([error("FILE_UNEXPECTED", "s0000", "s0000/<img src=https://x.test/a.png>", "see http://x.test/"),
                          error("META_VALUE", "s0000", "meta.csv", "value '<a href=\"//x.test\">' breaks the rule")],
                         [case_report("s0000", institute="<img src='https://x.test/b.png'>")])
    html = render_html(report)
    urls = Links(html).urls
    assert urls and all(u.startswith(("#", "data:", "../index.html")) for u in urls), urls
    assert "url(" not in html


def test_markup_in_file_names_cannot_close_the_data_script() -> None:
    path = "s0000/segmentations/</script><script>alert(1)</script>.nii.gz"
    html = render_html(make_report([warning("FILE_UNEXPECTED", "s0000", path)], [case_report("s0000")]))
    assert "<script>alert(1)" not in html
    blob = re.search(r'<script type="application/json" id="findings-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(blob)["rows"][0][FINDING_COLUMNS.index("path")] == path


def ten_thousand_findings() -> Report:
    """1,000 cases with ten findings each, shaped like real ones: long paths, affines in the details, overlaps."""
    cases = [case_report(f"s{i:04d}", ("train", "val", "test")[i % 3], age=str(20 + i % 70), gender="mf"[i % 2],
                         institute="ABCDEFGH"[i % 8], study_type="ct thorax-abdomen-pelvis", manufacturer="siemens",
                         scanner_model="somatom definition as", kvp="120", pathology="no_pathology")
             for i in range(1000)]
    affine = [[1.5, 0.0, 0.0, -250.75], [0.0, 1.5, 0.0, -180.25], [0.0, 0.0, 1.5, -1012.5], [0.0, 0.0, 0.0, 1.0]]
    names = ["vertebrae_L1", "rib_left_12", "iliopsoas_right", "kidney_cyst_left", "humerus_right"]
    findings = []
    for c in cases:
        for k, name in enumerate(names):
            path = mask(c.case, name)
            findings.append(error("GEOM_AFFINE_MISMATCH", c.case, path,
                                  f"{path}: affine differs from its image's by up to 0.5 mm", class_name=name,
                                  max_deviation_mm=0.5, tolerance_mm=0.001, affine=affine, image_affine=affine))
            findings.append(warning("LABEL_OVERLAP", c.case, path,
                                    f"{name} shares {100 + k} voxels (0.34 mL, 1.2% of the smaller mask) with liver",
                                    class_name=name, class_a="liver", class_b=name, path_a=mask(c.case, "liver"),
                                    voxels=100 + k,
                                    volume_ml=0.3375, share_of_smaller=0.012))
    return make_report(findings, cases, mode="deep")


def test_ten_thousand_findings_render_within_the_size_bound() -> None:
    report = ten_thousand_findings()
    assert len(report.findings) == 10_000
    html = render_html(report)
    size = len(html.encode("utf-8"))
    assert size < TEN_THOUSAND_FINDINGS_MAX_BYTES, f"{size:,} bytes"
    blob = re.search(r'id="findings-data">(.*?)</script>', html, re.S).group(1)
    assert len(json.loads(blob)["rows"]) == 10_000
    assert html.count("<tr") < 100, "findings are rows of the data blob, drawn a page at a time by the script"


def test_history_index_lists_every_readable_report(tmp_path: Path, faulty: Report) -> None:
    passed = make_report([], [case_report("s0000")], release="/data/v2-fixed", started=STARTED + timedelta(days=1))
    for folder, report in (("totalsegmentator-v2", faulty), ("fixed", passed)):
        write_report(report, tmp_path / folder)
        publish_html(report, tmp_path / folder)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{not json")
    entries = read_entries(tmp_path)
    assert [(e.folder, e.verdict, e.errors) for e in entries] == [("fixed", "PASS", 0),
                                                                   ("totalsegmentator-v2", "FAIL", 3)]
    index = write_index(tmp_path).read_text()
    assert 'href="fixed/report.html"' in index and 'href="totalsegmentator-v2/report.html"' in index
    assert "/data/v2-fixed" in index and "broken" not in index


def test_check_writes_the_page_next_to_the_json_and_refreshes_the_index(example_copy, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    release = example_copy("s0000", "s0001")
    (release / "s0001" / "segmentations" / "liver.nii.gz").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(release), "--spec", SPEC, "--subset", "--quiet", "--jobs", "1", "--mode", "quick"]) == 1
    (out,) = (tmp_path / "reports" / SPEC / "release").glob("*T*Z")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "run.json"]
    html = (out / "report.html").read_text()
    assert "FILE_MISSING" in html and "s0001/segmentations/liver.nii.gz" in html
    assert 'href="../../../index.html"' in html
    assert f'href="{SPEC}/release/{out.name}/report.html"' in (tmp_path / "reports" / "index.html").read_text()


def test_findings_past_the_row_cap_stay_in_the_json_report_only(
    monkeypatch: pytest.MonkeyPatch, faulty: Report
) -> None:
    monkeypatch.setattr("qa.output.html.page.MAX_FINDING_ROWS", 2)
    page = build_page(faulty, drawings=False)
    rows = json.loads(page.findings_json)["rows"]
    assert [row[FINDING_COLUMNS.index("severity")] for row in rows] == [0, 0], "the most severe are kept"
    assert "The page holds the 2 most severe of the 4 findings" in render_page(page)


def test_the_index_shows_any_folder_name_as_text_and_links_it_percent_encoded(tmp_path: Path, faulty: Report) -> None:
    odd = os.fsdecode(b"run \xe9#1")
    write_report(faulty, tmp_path / odd)
    index = write_index(tmp_path).read_text(encoding="utf-8")
    assert 'href="run%20%E9%231/report.json"' in index and "run \\xe9#1" in index


def test_the_diff_page_lists_the_changes_escapes_names_and_loads_nothing() -> None:
    from report_builders import report

    from qa.output.html.diff import render_diff
    from qa.report.diff import diff_reports

    hostile = warning("FILE_UNEXPECTED", "s0001", "s0001/<img src=https://x.test/a.png>.nii.gz", "junk")
    old = report([error("FILE_MISSING", "s0002", mask("s0002", "liver"))], {"s0001": "val", "s0002": "test"})
    new = report([hostile], {"s0001": "test", "s0003": "train"})
    html = render_diff(diff_reports(old, new, "old/report.json", "new/report.json"))
    assert "<img src=https" not in html and "&lt;img src=https://x.test/a.png&gt;" in html
    assert all(u.startswith(("#", "data:")) for u in Links(html).urls)
    assert 'id="count-new">1<' in html and 'id="count-fixed">1<' in html
    for section in ('id="new-list"', 'id="fixed-list"', 'id="split-moves"', 'id="cases-added"', 'id="cases-removed"'):
        assert section in html


def test_the_report_page_says_what_the_baseline_and_waivers_did() -> None:
    from datetime import date

    from report_builders import finding, report

    from qa.report.gate import Gate, apply_gate
    from qa.rules.baseline import baseline_of
    from qa.rules.waivers import Waiver, Waivers

    known, new = finding("FILE_CORRUPT", "s0002/ct.nii.gz"), finding("FILE_MISSING", mask("s0001", "liver"))
    base = baseline_of([known], SPEC, "/r", "quick", STARTED, "0.2")
    waivers = Waivers(file="w.yaml", spec=None, entries=[Waiver(code="FILE_MISSING", reason="re-export")], lines=[2])
    r = apply_gate(report([known, new]), Gate(fail_on="error", today=date(2027, 1, 1), baseline=base,
                                              baseline_file="ci/b.json", waivers=waivers))
    page = build_page(r, drawings=False)
    html = render_page(page)
    assert "no new finding reaches the fail-on level (error)" in html
    assert "Baseline ci/b.json (the run of 2026-11-01 09:30 UTC): 1 new, 0 worse, 1 unchanged" in html
    assert "1 finding waived" in html
    rows = json.loads(page.findings_json)["rows"]
    assert sorted(row[FINDING_COLUMNS.index("gate")] or "" for row in rows) == ["", "waived: re-export"]


def whole(volume_ml: float, extent_mm: float = 100.0) -> LabelStats:
    return LabelStats(voxels=round(volume_ml / 0.003375), volume_ml=volume_ml, mean_hu=40.0,
                      bbox=[[1, 1, 1], [4, 4, 4]], centroid_mm=[1.0, 2.0, 3.0], whole=True, extent_mm=extent_mm)


def test_class_distributions_mark_the_cases_a_label_finding_names() -> None:
    cases = [case_report(f"s{k:04d}", labels={"liver": whole(1000 + 10 * k)}) for k in range(20)]
    cases.append(case_report("s0020", labels={"liver": whole(3500)}))
    outlier = warning("LABEL_OUTLIER", "s0020", mask("s0020", "liver"), "3.4x the median", class_name="liver")
    classes = [ClassStats(name="liver", cases_present=21, cases_checked=21, volume_ml_median=1100.0,
                          volume_ml_q1=1050.0, volume_ml_q3=1150.0, mean_hu_median=40.0, cases_whole=21)]
    report = make_report([outlier], cases, mode="deep", classes=classes)
    [series] = class_series(report)
    assert (series.name, len(series.volumes), series.flagged) == ("liver", 21, [("s0020", 3500, 100.0)])
    page = build_page(report)
    assert page.distributions is not None and page.distributions.svg.startswith("<svg ")
    assert ">s0020</text>" in page.distributions.svg and FLAGGED_FILL in page.distributions.svg
    assert 'id="distributions"' in render_page(page)


def test_drift_table_lists_each_class_against_the_reference_with_its_severity() -> None:
    drift = [DriftStats(name="liver", cases=200, present=60, coverage=0.3, reference_coverage=0.763, coverage_pp=-46.3,
                        coverage_z=-15.3, volume_ml=1400.0, reference_volume_ml=1363.42, volume_ratio=1.027,
                        volume_z=0.8, coverage_severity="warning")]
    report = make_report([], [case_report("s0000")], mode="deep", drift=drift, reference="v2 dataset card")
    html = render_page(build_page(report, drawings=False))
    table = html[html.index('id="drift-list"'):]
    assert "v2 dataset card" in html
    assert re.search(r"<td>liver</td>.*?30\.0%.*?76\.3%.*?-46\.3.*?sev warning", table, re.S)


MATH_NAMES = ["$x^2$", "$", "a$$b", "$x^$"]  # 'a$$b' and '$x^$' raise as math text


def test_class_and_case_names_with_dollars_or_markup_are_drawn_as_they_are() -> None:
    names = [*MATH_NAMES, "<b>a&b</b>"]
    series = [ClassSeries(name, [100.0, 120.0], [50.0, 60.0], [(f"case{name}", 400.0, 90.0)]) for name in names]
    svg = class_distributions_figure(series)
    drawn = re.findall(r">([^<]*)</text>", svg)
    for name in [*names, *(f"case{name}" for name in names)]:
        assert html_escape(name, quote=False) in drawn, name
    assert "<b>" not in svg


def test_a_meta_csv_column_named_like_math_text_is_a_literal_figure_title() -> None:
    svg = numbers_figure({name: [1.0, 2.0] for name in MATH_NAMES})
    assert all(f">{name}</text>" in svg for name in MATH_NAMES)


def test_info_findings_past_the_inline_count_are_counted_per_code_and_class_and_kept_apart(
    monkeypatch: pytest.MonkeyPatch, faulty: Report
) -> None:
    info = [made("LABEL_TRUNCATED", "info", case, mask(case, name), "cut", name, {})
            for case in ("s0000", "s0001") for name in ("liver", "spleen")] + [
        made("LABEL_TRUNCATED", "info", "s0002", mask("s0002", "liver"), "cut", "liver", {})]
    report = faulty.model_copy(update={"findings": faulty.findings + info})
    monkeypatch.setattr("qa.output.html.page.INLINE_INFO", 4)
    page = build_page(report, drawings=False)
    assert [(i.code, i.class_name, i.count, i.cases) for i in page.info_counts] == [
        ("LABEL_TRUNCATED", "liver", 3, 3), ("LABEL_TRUNCATED", "spleen", 2, 2)]
    severity = FINDING_COLUMNS.index("severity")
    assert [row[severity] for row in json.loads(page.findings_json)["rows"]] == [0, 0, 0, 1]
    assert [row[severity] for row in json.loads(page.info_json)["rows"]] == [2] * 5
    html = render_page(page)
    assert 'id="info-data"' in html and "Add the 5 info findings to the table" in html
    monkeypatch.setattr("qa.output.html.page.INLINE_INFO", 5)
    page = build_page(report, drawings=False)
    assert page.info_json is None and len(json.loads(page.findings_json)["rows"]) == 9
    assert 'id="info-data"' not in render_page(page) and 'id="info-counts"' in render_page(page)
