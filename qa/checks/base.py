"""What every check uses: the Check record and registry, the judging context, and the finding factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from qa.rules.codes import CODES, Pass, Severity
from qa.rules.finding import Detail, Finding, fingerprint
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import CaseFacts, FileFacts, HeaderFacts, Problem, ReleaseFacts
from qa.scan.measures import ClassDrift, Measured, class_drift, measured_masks

if TYPE_CHECKING:
    from qa.checks.meta import MetaParse

# release: once per release; case: once per scanned case; unscanned_case: once per case that could not be scanned.
Scope = Literal["release", "case", "unscanned_case"]


@dataclass
class Context:
    """What a check judges with, beside the facts: the spec, whether the release is a subset, meta.csv as parsed."""

    facts: ReleaseFacts
    spec: ReleaseSpec
    subset: bool = False
    # What several checks of one case ask of its files, worked out once per case: judging runs every check of a case
    # before the next case, so only the case being judged is kept.
    _case: str | None = field(default=None, init=False, repr=False)
    _problems: dict[int, tuple[FileFacts, Problem | None]] = field(default_factory=dict, init=False, repr=False)
    _masks: list[tuple[str, str]] = field(default_factory=list, init=False, repr=False)
    _headers: list[tuple[str, str, HeaderFacts | None]] | None = field(default=None, init=False, repr=False)
    # The measured masks of every case, kept for the whole release: checks of the release and the report's label
    # statistics read them again.
    _measured: dict[str, dict[str, Measured]] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def meta(self) -> MetaParse:
        from qa.checks.meta import parse_meta

        return parse_meta(self.facts.meta, self.spec)

    @cached_property
    def drift(self) -> list[ClassDrift]:
        """class_drift of the release: judged by a check and listed in the report."""
        return class_drift(self.facts, self.spec, self.measured_masks)

    def _judging(self, case: CaseFacts) -> None:
        if case.case != self._case:
            self._case, self._problems, self._masks = case.case, {}, mask_paths(case, self.spec)
            self._headers = None

    def measured_masks(self, case: CaseFacts) -> dict[str, Measured]:
        """measured_masks(case, spec), made once per case."""
        known = self._measured.get(case.case)
        if known is None:
            known = self._measured[case.case] = measured_masks(case, self.spec)
        return known

    def mask_paths(self, case: CaseFacts) -> list[tuple[str, str]]:
        """mask_paths(case, spec), made once per case."""
        self._judging(case)
        return self._masks

    def mask_headers(self, case: CaseFacts) -> list[tuple[str, str, HeaderFacts | None]]:
        """(class, path, usable_header) of every mask the spec expects in the case, made once per case."""
        self._judging(case)
        if self._headers is None:
            files = case.files
            self._headers = [(name, path, self.usable_header(case, files.get(path))) for name, path in self._masks]
        return self._headers

    def header_problem(self, case: CaseFacts, facts: FileFacts) -> Problem | None:
        """header_problem of a file of the case, worked out once per file."""
        self._judging(case)
        known = self._problems.get(id(facts))
        if known is None or known[0] is not facts:  # kept with its facts: their id cannot name another file meanwhile
            known = self._problems[id(facts)] = (facts, header_problem(facts, self.spec))
        return known[1]

    def usable_header(self, case: CaseFacts, facts: FileFacts | None) -> HeaderFacts | None:
        """usable_header of a file of the case, worked out once per file."""
        if facts is None or self.header_problem(case, facts) is not None:
            return None
        return facts.header


@dataclass(frozen=True)
class Check:
    """A check: the codes it can raise, what it runs on, the pass whose facts it needs, and the function."""

    name: str
    codes: tuple[str, ...]
    scope: Scope
    needs: Pass
    run: Callable[..., list[Finding]] = field(compare=False)


REGISTRY: list[Check] = []


def check(name: str, codes: tuple[str, ...], scope: Scope = "case", needs: Pass = "quick") -> Callable:
    """Register a check function: `(ctx) -> findings` for the release scope, `(case, ctx) -> findings` otherwise."""
    unknown = [c for c in codes if c not in CODES]
    if unknown:
        raise ValueError(f"check {name} names unknown codes {unknown}")

    def register(fn: Callable[..., list[Finding]]) -> Callable[..., list[Finding]]:
        REGISTRY.append(Check(name, codes, scope, needs, fn))
        return fn

    return register


def finding(spec: ReleaseSpec, code: str, case: str | None, path: str | None, message: str,
            subcode: str | None = None, severity: Severity | None = None, class_name: str | None = None,
            key: str | None = None, **details: Detail) -> Finding:
    """A finding whose severity is the spec's for this code (or subcode), unless a spec threshold decided it.
    `key` tells apart findings of one code on one file or row in the fingerprint (see rules.finding.fingerprint)."""
    return Finding(code=code, subcode=subcode, severity=severity or spec.severity(code, subcode), case=case, path=path,
                   class_name=class_name, message=message, details=details,
                   fingerprint=fingerprint(code, subcode, case, path, class_name, key))


def header_problem(facts: FileFacts, spec: ReleaseSpec) -> Problem | None:
    return facts.problem(spec.geometry.max_voxels, spec.geometry.max_bytes)


def usable_header(facts: FileFacts | None, spec: ReleaseSpec) -> HeaderFacts | None:
    if facts is None or header_problem(facts, spec) is not None:
        return None
    return facts.header


def mask_paths(case: CaseFacts, spec: ReleaseSpec) -> list[tuple[str, str]]:
    """(class, path) of every mask the spec expects in the case."""
    prefix = f"{case.case}/"
    return [(name, prefix + file) for name, file in spec.mask_files()]
