"""Checks of presence and integrity: case folders against meta.csv, expected and unexpected files, corrupt files."""

from __future__ import annotations

import fnmatch

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec, case_folders
from qa.rules.text import is_safe
from qa.scan.facts import CaseFacts, FileFacts, Problem

OS_JUNK = (".DS_Store", "__MACOSX", "Thumbs.db", "desktop.ini")


@check("files.root", ("FILE_UNEXPECTED", "CASE_MISSING", "CASE_UNLISTED"), scope="release")
def check_root(ctx: Context) -> list[Finding]:
    facts, spec, table = ctx.facts, ctx.spec, ctx.meta.table
    folders = set(case_folders(facts.root_entries, spec.case_pattern))
    found = [unexpected(spec, None, e.path, e.kind) for e in facts.root_entries
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


def unexpected(spec: ReleaseSpec, case: str | None, path: str, kind: str) -> Finding:
    name = path.rsplit("/", 1)[-1]
    if not is_safe(name):
        subcode, why = "bad_name", ("a name that is not valid UTF-8 or holds control characters (shown with them "
                                    "escaped): tools that read the release as text fail on it or print it wrongly")
    elif name.startswith("._") or name in OS_JUNK:
        subcode, why = "os_junk", "operating-system junk (macOS resource fork or folder metadata)"
    elif kind == "symlink":
        subcode, why = "link", "a symbolic link"
    else:
        subcode, why = "unknown", f"a {'folder' if kind == 'dir' else 'file'} the spec does not expect here"
    return finding(spec, "FILE_UNEXPECTED", case, path, f"{path}: {why}", subcode=subcode, entry=kind)


@check("files.case", ("FILE_UNEXPECTED", "FILE_MISSING", "FILE_CORRUPT", "FILE_VERSION"))
def check_case_files(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    kinds = {e.path: e.kind for e in case.entries}
    image, mask_dir = f"{case.case}/{spec.image}", f"{case.case}/{spec.mask_dir}"
    masks = ctx.mask_paths(case)
    expected = {image, mask_dir, *(path for _, path in masks)}
    found = [unexpected(spec, case.case, path, kind) for path, kind in kinds.items() if path not in expected]
    kind = kinds.get(mask_dir)
    if kind != "dir":
        why = {None: "is missing: none of the {n} masks is there",
               "symlink": "is a symbolic link, not a folder: none of its {n} masks is checked"}.get(
                   kind, "is not a folder: none of the {n} masks is there").format(n=len(masks))
        found.append(finding(spec, "FILE_MISSING", case.case, mask_dir, f"{mask_dir}/ {why}", subcode="folder",
                             missing_files=len(masks), entry=kind))
        masks = []
    for name, path in [(None, image), *masks]:
        if path in case.failures:  # files.failures reports it
            continue
        if path not in kinds:
            found.append(finding(spec, "FILE_MISSING", case.case, path, f"{path} is missing", subcode="file",
                                 class_name=name))
            continue
        facts = case.files.get(path) or FileFacts(path, 0, corrupt=Problem("unreadable", "not a regular file"))
        problem = ctx.header_problem(case, facts)
        if problem is not None:
            found.append(finding(spec, "FILE_CORRUPT", case.case, path, f"{path}: {problem.reason}",
                                 subcode=problem.kind, class_name=name, reason=problem.reason, size=facts.size,
                                 isize=facts.isize))
        elif facts.header.version not in spec.nifti_versions:
            allowed = " or ".join(f"NIfTI-{v}" for v in spec.nifti_versions)
            found.append(finding(spec, "FILE_VERSION", case.case, path,
                                 f"{path}: NIfTI-{facts.header.version}, the release's readers open {allowed}",
                                 class_name=name, version=facts.header.version, allowed=list(spec.nifti_versions)))
    return found


@check("files.failures", ("QA_INTERNAL",))
def check_failures(case: CaseFacts, ctx: Context) -> list[Finding]:
    """A file whose reading or measuring raised: its own finding, while the case's other files are judged as usual."""
    classes = {path: name for name, path in ctx.mask_paths(case)}
    return [finding(ctx.spec, "QA_INTERNAL", case.case, path, f"{path} could not be checked: {failure.reason}",
                    subcode="file", class_name=classes.get(path), error=failure.reason)
            for path, failure in sorted(case.failures.items())]
