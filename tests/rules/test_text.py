"""Untrusted text: what cannot be stored or shown as it is becomes an escape; everything else stays as it is."""

from __future__ import annotations

import os

import pytest

from qa.rules.text import is_safe, safe_text


@pytest.mark.parametrize(("text", "shown"), [
    (os.fsdecode(b"notes_\xe9.txt"), "notes_\\xe9.txt"),  # a byte that is not UTF-8, as Python holds it (PEP 383)
    ("s0000\x1b[2J", "s0000\\x1b[2J"),
    ("line\nbreak\ttab\rreturn", "line\\nbreak\\ttab\\rreturn"),
    ("\x85\x7f", "\\x85\\x7f"),
    ("\u202egnp.exe", "\\u202egnp.exe"),
    ("\ud800", "\\ud800"),
])
def test_what_cannot_be_stored_or_shown_becomes_an_escape(text: str, shown: str) -> None:
    assert safe_text(text) == shown
    assert not is_safe(text)
    shown.encode("utf-8")


@pytest.mark.parametrize("text", ["s0001/segmentations/liver.nii.gz", "Zürich", "[/red]", "a\\xe9", "水 1"])
def test_printable_text_stays_as_it_is(text: str) -> None:
    assert safe_text(text) == text and is_safe(text)


def test_escaping_twice_changes_nothing() -> None:
    once = safe_text(os.fsdecode(b"\xff\x1b"))
    assert safe_text(once) == once == "\\xff\\x1b"
