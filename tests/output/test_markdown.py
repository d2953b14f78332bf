"""Markdown for CI: the diff of two reports as a pull-request comment; table cells hostile text cannot break."""

from __future__ import annotations

import pytest
from report_builders import class_stats, finding, mask, report
from support import markdown_problems

from qa.output.markdown import diff_markdown, table
from qa.output.text import md_code, md_text
from qa.report.diff import diff_reports

CORRUPT = finding("FILE_CORRUPT", "s0002/ct.nii.gz", subcode="stream")
OVERLAP = finding("LABEL_OVERLAP", mask("s0001", "liver"), "warning", class_name="liver", key="spleen")


# What a release's names and meta.csv cells may hold that GitHub would render as something else than text.
HOSTILE = "@octocat #1 https://evil.example/x www.evil.example a@evil.example <img src=x> [a](http://x) |*b*| `c`\nd"


def test_a_table_cell_keeps_to_one_line_and_escapes_markdown_and_html() -> None:
    assert md_text("a|b\n<script>*x*</script> [l](u) & `c`") == (
        "a\\|b &lt;script&gt;\\*x\\*&lt;/script&gt; \\[l\\](u) &amp; \\`c\\`")
    assert md_code("s0001/a|b`c.nii.gz") == "``s0001/a\\|b`c.nii.gz``"
    assert md_code(None) == "–"


def test_mentions_references_and_autolinks_are_broken_by_a_zero_width_space() -> None:
    assert md_text("@octocat #1 https://x WWW.x") == (
        "@&#8203;octocat \\#&#8203;1 https:&#8203;//x WWW&#8203;.x")


def test_a_backslash_before_a_pipe_in_a_code_span_cannot_unescape_the_pipe() -> None:
    # GitHub's table scanner (cmark-gfm's ext_scanners.re) takes a backslash and any punctuation after it as one
    # escaped character, so in `a\\|b` the pipe ends the cell; markdown-it would not, hence the literal Markdown here.
    assert md_code("a\\|b") == "`a\\\\\\|b`"
    assert md_text("a\\|b") == "a\\\\\\|b"


@pytest.mark.parametrize("text", [HOSTILE, "`` ` ``", "a\\"])
def test_hostile_text_is_inert_in_a_table_as_text_and_as_code(text: str) -> None:
    rows = [[md_text(text), md_code(text), md_code(f"s0001/{text}")]]
    assert markdown_problems(table(["text", "code", "path"], rows)) == []


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


def test_a_diff_of_findings_on_hostile_names_is_inert_markdown() -> None:
    hostile = [finding("FILE_UNEXPECTED", f"s0001/{HOSTILE}.nii.gz", "warning", subcode="unknown"),
               finding("META_VALUE", "meta.csv", message=f"line 2, split: {HOSTILE!r} breaks rule 'isin'"),
               finding("LABEL_EXTRA", mask("s0000", HOSTILE), "warning", class_name=HOSTILE)]
    text = diff_markdown(diff_reports(report([]), report(hostile, mode="deep", release=f"/data/{HOSTILE}"),
                                      f"a/{HOSTILE}/report.json", "b/report.json"))
    assert "#### New findings (3)" in text
    assert markdown_problems(text) == []
