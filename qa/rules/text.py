"""Untrusted text from a release (file names, meta.csv cells) made valid to store and safe to show anywhere."""

from __future__ import annotations

import re

# Control characters (C0, DEL, C1) move a terminal's cursor, clear it or start escape sequences; the bidirectional
# embeddings, overrides and isolates reorder what is shown around them. The line and paragraph separators end a line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Python holds a file name's bytes that are not UTF-8 as the lone surrogates U+DC80..U+DCFF (PEP 383).
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(text: str) -> str:
    """The text with what cannot be stored or shown as it is written as an escape: a file name's bytes that are not
    UTF-8 as \\xNN, control characters as \\n, \\t, \\xNN, bidirectional controls as \\uNNNN. Backslashes stay as
    they are, so a name that already holds such an escape reads the same: the text is for people and reports; a
    source reads files by their real names."""
    return text if text.isprintable() and text.isascii() else _UNSAFE.sub(_escape, text)


def is_safe(text: str) -> bool:
    """Whether the text can be stored and shown as it is: valid UTF-8 without control characters."""
    return safe_text(text) == text
