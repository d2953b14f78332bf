"""What a check may read: a configured root and a relative sub-path inside it, resolved, and nothing else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qa.app.serve.config import Root, ServeConfig
from qa.source.base import ReleaseSource

MAX_PATH_CHARS = 1024
# A request path arrives decoded once (JSON, or a form); what still looks percent-encoded is a second layer meant to
# be decoded by someone else, so it is refused rather than guessed at.
ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Refused(ValueError):
    """A check the service will not run; the message says why, and names nothing outside the root."""


@dataclass(frozen=True)
class Target:
    """A release a check reads: the root's id, the sub-path as given (normalised), and the real path on disk."""

    root: str
    path: str
    real: Path
    is_zip: bool


def clean_subpath(path: str) -> str:
    """The sub-path's parts joined by '/', or Refused: absolute, '..', encoded, control characters, too long."""
    if len(path) > MAX_PATH_CHARS:
        raise Refused(f"the path is longer than {MAX_PATH_CHARS} characters")
    if CONTROL.search(path):
        raise Refused("the path holds a control character")
    if ENCODED.search(path):
        raise Refused("the path holds a percent-encoded character; send it decoded")
    if "\\" in path:
        raise Refused("the path holds a backslash; separate folders with '/'")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise Refused("the path must be relative to the root")
    if ".." in pure.parts:
        raise Refused("the path must not contain '..'")
    return "/".join(p for p in pure.parts if p != ".")


def resolve_target(config: ServeConfig, root_id: str, path: str) -> Target:
    """The release a check of `root_id` and `path` reads, or Refused. Links are resolved and the result must lie
    inside the root; run again when the job starts, since the tree may have changed since the request."""
    root = config.roots.get(root_id)
    if root is None:
        raise Refused(f"no root {root_id!r}; GET /api/v1/roots lists them")
    sub = clean_subpath(path)
    if root.is_zip:
        return _zip_target(root_id, root, sub)
    try:
        real_root = root.path.resolve(strict=True)
        real = (real_root / sub).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a link loop
        raise Refused(f"{sub or 'the root'} does not exist in root {root_id}") from None
    if not real.is_relative_to(real_root):
        raise Refused(f"{sub} leaves root {root_id} (through a symbolic link)")
    if not real.is_dir():
        raise Refused(f"{sub or 'the root'} is not a folder")
    return Target(root=root_id, path=sub, real=real, is_zip=False)


def _zip_target(root_id: str, root: Root, sub: str) -> Target:
    if sub:
        raise Refused(f"root {root_id} is a zip file: check it whole, without a path")
    if not root.path.is_file():
        raise Refused(f"the zip file of root {root_id} is missing")
    return Target(root=root_id, path="", real=root.path.resolve(), is_zip=True)


def source_for(path: Path) -> ReleaseSource:
    """The source that reads the release at a path: the one place that picks it, a folder or a zip archive read in
    place (as `tsqa check FILE.zip` does)."""
    from qa.app.pipeline import open_release  # the checks and their readers: only the worker, not the web process
    from qa.source.zip import NotAZip

    try:
        return open_release(path)
    except NotAZip as exc:
        raise Refused(f"{path.name} is not a zip archive tsqa can read: {exc}") from exc
