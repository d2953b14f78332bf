"""The JSON of the API under /api/v1: a public contract like the finding codes (fields are added, never removed,
renamed or retyped within v1; the OpenAPI document is served at /api/v1/openapi.json, Swagger UI at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.app.serve.store import Job, State
from qa.report.model import Mode

API_VERSION = "v1"
PREFIX = f"/api/{API_VERSION}"
REPORT_FILES = {"report.json": "application/json", "report.html": "text/html; charset=utf-8",
                "junit.xml": "application/xml", "report.sarif": "application/sarif+json"}
DIFF_FILES = {"diff.json": "application/json", "diff.html": "text/html; charset=utf-8",
              "diff.md": "text/markdown; charset=utf-8"}


class CheckRequest(BaseModel):
    """A check to start: a configured root and, optionally, a folder inside it."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(max_length=64, description="A root id of GET /api/v1/roots.")
    path: str = Field("", max_length=1024, description="A folder inside the root, relative, '/'-separated; '' is "
                                                       "the root itself.")
    spec: str | None = Field(None, max_length=128, description="A spec id of GET /api/v1/specs; default: the "
                                                               "root's, else detected from the release.")
    mode: Mode = Field("deep", description="deep: every byte decompressed and measured; quick: headers only.")
    subset: bool = Field(False, description="The folder holds part of a release: split counts are not judged.")


class Accepted(BaseModel):
    id: str
    state: State
    url: str = Field(description="Where the check's state is: GET it.")


class Progress(BaseModel):
    phase: str | None = Field(description="starting, scanning, writing or done.")
    cases_done: int
    cases_total: int | None
    files: int


class Counts(BaseModel):
    cases: int
    files: int
    error: int
    warning: int
    info: int
    failing: int = Field(description="Findings that made the verdict FAIL.")
    waived: int
    by_code: dict[str, int]


class DiffSummary(BaseModel):
    """What changed since the previous finished check of the same root, path and spec (as `tsqa diff`)."""

    previous: str = Field(description="The id of that check.")
    new: int
    fixed: int
    unchanged: int
    severity_changed: int
    cases_added: int
    cases_removed: int
    split_moves: int
    class_changes: int
    links: dict[str, str] = Field(description="diff.json, diff.html and diff.md of this check.")


class CheckStatus(BaseModel):
    id: str
    root: str
    path: str
    spec: str | None = Field(description="The spec the request named.")
    spec_id: str | None = Field(description="The spec the check used, once it finished.")
    mode: Mode
    subset: bool
    state: State
    submitted_by: str = Field(description="The name of the token that submitted it.")
    submitted: datetime
    started: datetime | None
    finished: datetime | None
    progress: Progress
    verdict: Literal["pass", "fail"] | None
    counts: Counts | None
    reason: str | None = Field(description="Why it failed or was cancelled.")
    reports: dict[str, str] = Field(description="report.json, report.html, junit.xml and report.sarif, once finished.")
    diff: DiffSummary | None = Field(description="Against the previous check of the same root, path and spec.")

    @classmethod
    def of(cls, job: Job) -> CheckStatus:
        base = f"{PREFIX}/checks/{job.id}"
        finished = job.state == "finished" and job.run is not None
        diff = None
        if job.diff is not None and job.previous is not None:
            fields = {k: v for k, v in job.diff.items() if k in DiffSummary.model_fields}
            diff = DiffSummary(previous=job.previous, links={n: f"{base}/{n}" for n in DIFF_FILES}, **fields)
        return cls(
            id=job.id, root=job.root, path=job.path, spec=job.spec, spec_id=job.spec_id, mode=job.mode,
            subset=job.subset, state=job.state, submitted_by=job.submitted_by, submitted=job.submitted,
            started=job.started, finished=job.finished,
            progress=Progress(phase=job.phase, cases_done=job.cases_done, cases_total=job.cases_total,
                              files=job.files),
            verdict=job.verdict, counts=None if job.counts is None else Counts(**job.counts), reason=job.reason,
            reports={n: f"{base}/{n}" for n in REPORT_FILES} if finished else {}, diff=diff)


class RootInfo(BaseModel):
    id: str
    kind: Literal["folder", "zip"]
    path: str
    spec: str | None = Field(description="The spec its checks use by default (null: detected).")
    latest: CheckStatus | None = Field(description="Its latest finished check.")
    active: list[CheckStatus] = Field(description="Its running and queued checks, oldest first.")


class History(BaseModel):
    root: str
    checks: list[CheckStatus] = Field(description="Newest first, each with its verdict, counts and the diff to the "
                                                  "previous check of the same path and spec.")


class SpecInfo(BaseModel):
    id: str
    title: str
    classes: int
    expected_cases: int | None
    origin: Literal["built-in", "config"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    worker: bool = Field(description="Whether the worker process that runs checks is alive.")


class Problem(BaseModel):
    detail: str
