"""A release path opened as its source: a folder, or a zip archive read in place."""

from __future__ import annotations

from pathlib import Path

from qa.rules.spec import ReleaseSpec, all_builtin_specs
from qa.source.base import ReleaseSource
from qa.source.fs import FolderSource
from qa.source.zip import ZipSource


def open_release(path: Path, spec: ReleaseSpec | None = None) -> ReleaseSource:
    """The release at a path: a folder, or a zip archive read in place, whose single top folder is the release root
    unless it is named like a case of the spec (of any built-in spec, when none is given). NotAZip when the path is a
    file that is no zip archive this reader takes."""
    if not path.is_file():
        return FolderSource(path)
    specs = [spec] if spec is not None else all_builtin_specs()
    return ZipSource(path, "|".join(f"(?:{pattern})" for pattern in sorted({s.case_pattern for s in specs})))
