"""Waivers: known problems accepted with a reason and an end date, read from YAML and matched against findings."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.rules.codes import CODES
from qa.rules.finding import Finding
from qa.rules.yamlfile import SafeLoader, YamlFileError, line_of, read_yaml

# The codes a waivers file makes about itself; they cannot be waived, or an expired waiver could hide its own expiry.
WAIVER_CODES = ("QA_WAIVER_EXPIRED", "QA_WAIVER_UNUSED")


class _Loader(SafeLoader):
    """YAML without implicit timestamps: a date stays text, so that pydantic judges it and says where it is wrong."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class WaiverError(ValueError):
    """A waivers file that cannot be read or does not validate; the message is one line naming where."""


class Waiver(BaseModel):
    """One accepted problem: what it matches (code, and optionally subcode, case, path, class) and why."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    code: str = Field(description="The finding code it waives (`tsqa explain` lists them).")
    subcode: str | None = Field(None, description="Only this variant of the code.")
    case: str | None = Field(None, description="Glob of case ids, e.g. 's01*'.")
    path: str | None = Field(None, description="Glob of release-relative paths; '*' also matches '/'.")
    class_name: str | None = Field(None, alias="class", description="Glob of class names, e.g. 'vertebrae_*'.")
    reason: str = Field(description="Why the problem is accepted: shown beside every finding it waives.")
    expires: date | None = Field(None, description="The last day it applies; from the day after, it is expired.")

    @field_validator("code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        if value not in CODES:
            raise ValueError(f"unknown finding code {value!r} ('tsqa explain' lists them)")
        if value in WAIVER_CODES:
            raise ValueError(f"{value} is about the waivers file itself and cannot be waived")
        return value

    @field_validator("reason")
    @classmethod
    def _has_reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a waiver must say why the problem is accepted")
        return value.strip()

    @model_validator(mode="after")
    def _known_subcode(self) -> Waiver:
        code = CODES[self.code]
        if self.subcode is not None and code.subcode(self.subcode) is None:
            known = ", ".join(s.name for s in code.subcodes) or "none"
            raise ValueError(f"{self.code} has no subcode {self.subcode!r} (its subcodes: {known})")
        return self

    def matches(self, f: Finding) -> bool:
        return (f.code == self.code and (self.subcode is None or f.subcode == self.subcode)
                and _glob(f.case, self.case) and _glob(f.path, self.path) and _glob(f.class_name, self.class_name))

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires

    def target(self) -> str:
        """What it matches, as one line: 'CODE:subcode case=... path=... class=...'."""
        parts = [self.code + (f":{self.subcode}" if self.subcode else "")]
        parts += [f"{key}={value}" for key, value in (("case", self.case), ("path", self.path),
                                                      ("class", self.class_name)) if value is not None]
        return " ".join(parts)


def _glob(value: str | None, pattern: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value, pattern))


class WaiverFile(BaseModel):
    """A waivers file: optionally the spec it was written for, and its waivers."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = Field(None, description="The spec id these waivers are for; checking another spec with them "
                                               "is a usage error.")
    waivers: list[Waiver]


@dataclass(frozen=True)
class Waivers:
    """A loaded waivers file: where it came from, the spec it names, its waivers and the line of each."""

    file: str
    spec: str | None
    entries: list[Waiver]
    lines: list[int | None]


def load_waivers(path: Path) -> Waivers:
    """Read and validate a waivers YAML; WaiverError names the file, line and field of the first problem."""
    try:
        data, tree = read_yaml(path, "waivers file", _Loader)
    except YamlFileError as exc:
        raise WaiverError(str(exc)) from exc
    if not isinstance(data, dict):
        raise WaiverError(f"{path}: a waivers file is a mapping with a 'waivers:' list")
    try:
        parsed = WaiverFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        line = line_of(tree, loc)
        where = f"{path}:{line}" if line is not None else str(path)
        in_entry = len(loc) > 1 and loc[0] == "waivers" and isinstance(loc[1], int)
        entry = f"waiver {loc[1] + 1}: " if in_entry else ""
        field = ".".join(str(p) for p in (loc[2:] if in_entry else loc)) or ("(entry)" if in_entry else "(top level)")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise WaiverError(f"{where}: {entry}{field}: {message}{more}") from exc
    lines = [line_of(tree, ("waivers", k)) for k in range(len(parsed.waivers))]
    return Waivers(file=str(path), spec=parsed.spec, entries=parsed.waivers, lines=lines)
