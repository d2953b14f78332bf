"""Text for the output formats: a release's text (file names, meta.csv cells) made safe for formats that cannot
carry every string, and counts in words."""

from __future__ import annotations

import re

# What XML 1.0 cannot hold (and terminals and CI logs show badly): C0 controls but tab and line breaks, lone
# surrogates (a file name byte that was not UTF-8, kept by surrogateescape), U+FFFE and U+FFFF.
_UNREADABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~#!])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# GitHub turns @names, #numbers, e-mail addresses and bare URLs into links in the rendered text, where a backslash
# escape is already gone: a zero-width space after '@' and '#', and inside '://' and 'www.', is what stops it.
_LINKING = re.compile(r"(?<=[@#])|(?<=:)(?=//)|(?<=www)(?=\.)", re.IGNORECASE)
_BREAK = "&#8203;"


def _spell(match: re.Match[str]) -> str:
    c = match.group()
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def readable(text: str) -> str:
    """The text with each character XML 1.0 cannot hold spelled out as \\xNN or \\uNNNN; tab and line breaks stay."""
    return _UNREADABLE.sub(_spell, text)


def one_line(text: str) -> str:
    """Readable, and on one line: line breaks become spaces."""
    return re.sub(r"\r\n|[\r\n]", " ", readable(text))


def md_text(text: str) -> str:
    """Text for a Markdown table cell, inert in GitHub's Markdown: one line; Markdown's punctuation backslash-escaped,
    HTML's as entities; no @mention, #reference or autolink."""
    escaped = _MARKDOWN.sub(r"\\\1", one_line(text))
    escaped = re.sub("[&<>]", lambda m: _ENTITIES[m.group()], escaped)
    return _LINKING.sub(_BREAK, escaped)


def md_code(text: str | None) -> str:
    """Text as a Markdown code span in a table cell (paths, cases, classes): shown literally, pipes escaped.

    GitHub neither links nor mentions inside code spans. A table row is split at each '|' not escaped, and a
    backslash escapes the character after it, the backslashes before a pipe too: those are doubled, so that the
    escape before the pipe is one of its own."""
    if text is None or text == "":
        return "–"
    body = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", one_line(text))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def counted(number: int, noun: str) -> str:
    """'1 error', '2 errors', '0 errors'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
