"""Reading the metadata table's bytes through the source: bounded in size, under the source's link and file rules."""

from __future__ import annotations

from qa.scan.facts import MetaFacts, Problem
from qa.source.base import MemberMissing, ReleaseSource, SourceError

MAX_META_BYTES = 64 << 20


def read_meta(source: ReleaseSource, name: str, limit: int = MAX_META_BYTES) -> MetaFacts:
    """The metadata table's bytes, or why they cannot be had; a link leaving the release is not followed."""
    try:
        size = source.stat(name).size
    except MemberMissing:
        return MetaFacts(path=name, present=False)
    except SourceError as exc:
        return MetaFacts(path=name, present=True, error=Problem("unreadable", str(exc)))
    if size > limit:
        return MetaFacts(path=name, present=True,
                         error=Problem("too_large", f"{size} bytes, more than a metadata table may have ({limit})"))
    try:
        return MetaFacts(path=name, present=True, raw=source.read(name, limit))
    except SourceError as exc:
        return MetaFacts(path=name, present=True, error=Problem("unreadable", str(exc)))
