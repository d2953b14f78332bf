"""Markdown for CI: the diff of two reports as a pull-request comment; table cells hostile text cannot break."""

from __future__ import annotations

from report_builders import class_stats, finding, mask, report

from qa.output.markdown import diff_markdown
from qa.output.text import md_code, md_text
from qa.report.diff import diff_reports

CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream")
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen")


def test_a_table_cell_keeps_to_one_line_and_escapes_markdown_and_html() -> None:
    assert md_text("a|b\n<script>*x*</script> [l](u) & `c`") == (
        "a\\|b \\<script\\>\\*x\\*\\</script\\> \\[l\\](u) \\& \\`c\\`")
    assert md_code("s0001/a|b`c.nii.gz") == "``s0001/a\\|b`c.nii.gz``"
    assert md_code(None) == "–"


def test_the_diff_comment_lists_new_and_fixed_findings_and_every_kind_of_change() -> None:
    old = report([CORRUPT], {"s0000": "train", "s0001": "val", "s0002": "test"}, mode="deep",
                 classes=[class_stats("spleen", 3, 200.0)])
    new = report([OVERLAP], {"s0000": "train", "s0001": "test", "s0003": "val"}, mode="deep",
                 classes=[class_stats("spleen", 3, 260.0)])
    text = diff_markdown(diff_reports(old, new, "a/report.json", "b/report.json"))
    assert text.startswith("### tsqa diff: ✅ 1 new, 1 fixed, 0 unchanged findings")
    assert "#### New findings (1)" in text and "`s0001/segmentations/liver.nii.gz`" in text
    assert "#### Fixed findings (1)" in text and "`s0002/ct.nii.gz`" in text
    assert "Added (1): `s0003`" in text and "Removed (1): `s0002`" in text
    assert "| `s0001` | `val` | `test` |" in text
    assert "| `spleen` | 3 | 3 | 200.0 | 260.0 | +30% |" in text


def test_a_diff_that_fails_says_how_many_new_findings_reach_fail_on() -> None:
    text = diff_markdown(diff_reports(report([]), report([CORRUPT]), "a", "b"))
    assert text.startswith("### tsqa diff: ❌") and "1 new finding at or above error that no waiver accepts" in text
    assert "Classes were not compared" in text
