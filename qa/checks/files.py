"""Checks of presence and integrity: case folders against meta.csv, expected and unexpected files, corrupt files."""

from __future__ import annotations

import fnmatch

from qa.checks import finding
from qa.facts import CaseFacts, FileFacts, HeaderFacts, ReleaseFacts
from qa.meta import MetaTable
from qa.report import Finding
from qa.scan import case_folders
from qa.spec import ReleaseSpec


def header_problem(facts: FileFacts, spec: ReleaseSpec) -> str | None:
    return facts.problem(spec.geometry.max_voxels, spec.geometry.max_bytes)


def usable_header(facts: FileFacts | None, spec: ReleaseSpec) -> HeaderFacts | None:
    if facts is None or header_problem(facts, spec) is not None:
        return None
    return facts.header


def check_root(facts: ReleaseFacts, spec: ReleaseSpec, table: MetaTable | None) -> list[Finding]:
    folders = set(case_folders(facts.root_entries, spec.case_pattern))
    found = [_unexpected(spec, None, e.path, e.kind) for e in facts.root_entries
             if e.path not in folders and e.path != spec.meta.file
             and not any(fnmatch.fnmatch(e.path, pat) for pat in spec.root_extra_allowed)]
    if table is None or spec.meta.id_column not in table.frame.columns:
        return found
    listed = set(table.frame[spec.meta.id_column].dropna())
    found += [finding(spec, "CASE_MISSING", case, case, f"{case} is listed in {spec.meta.file} but has no folder")
              for case in sorted(listed - folders)]
    found += [finding(spec, "CASE_UNLISTED", case, case, f"folder {case} is not listed in {spec.meta.file}")
              for case in sorted(folders - listed)]
    return found


def _unexpected(spec: ReleaseSpec, case: str | None, path: str, kind: str) -> Finding:
    name = path.rsplit("/", 1)[-1]
    if name.startswith("._") or name in (".DS_Store", "__MACOSX", "Thumbs.db", "desktop.ini"):
        why = "operating-system junk (macOS resource fork or folder metadata)"
    elif kind == "symlink":
        why = "a symbolic link"
    else:
        why = f"a {'folder' if kind == 'dir' else 'file'} the spec does not expect here"
    return finding(spec, "FILE_UNEXPECTED", case, path, f"{path}: {why}", entry=kind)


def check_case_files(case: CaseFacts, spec: ReleaseSpec) -> list[Finding]:
    kinds = {e.path: e.kind for e in case.entries}
    image, mask_dir = f"{case.case}/{spec.image}", f"{case.case}/{spec.mask_dir}"
    masks = [f"{case.case}/{spec.mask_file(name)}" for name in spec.classes]
    expected = {image, mask_dir, *masks}
    found = [_unexpected(spec, case.case, path, kind) for path, kind in kinds.items() if path not in expected]
    if kinds.get(mask_dir) != "dir":
        found.append(finding(spec, "FILE_MISSING", case.case, mask_dir,
                             f"{mask_dir}/ is missing: none of the {len(masks)} masks is there",
                             variant="folder", missing_files=len(masks)))
        masks = []
    for path in [image, *masks]:
        if path not in kinds:
            found.append(finding(spec, "FILE_MISSING", case.case, path, f"{path} is missing"))
            continue
        facts = case.files.get(path) or FileFacts(path=path, size=0, corrupt="not a regular file")
        problem = header_problem(facts, spec)
        if problem is not None:
            found.append(finding(spec, "FILE_CORRUPT", case.case, path, f"{path}: {problem}",
                                 reason=problem, size=facts.size, isize=facts.isize))
    return found
