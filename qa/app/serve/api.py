"""The API under /api/v1: start, watch and cancel checks, fetch their reports, list roots, histories and specs."""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qa.app.serve.config import ServeConfig
from qa.app.serve.confine import Refused, resolve_target
from qa.app.serve.models import (
    DIFF_FILES,
    PREFIX,
    REPORT_FILES,
    Accepted,
    CheckRequest,
    CheckStatus,
    Health,
    History,
    Problem,
    RootInfo,
    SpecInfo,
)
from qa.app.serve.security import SAFE_METHODS, SESSION_COOKIE, Principal, match_token, session_principal
from qa.app.serve.store import Job, JobStore, State
from qa.rules.spec import builtin_spec_names, load_spec

log = logging.getLogger("tsqa.serve")
JOB_ID = r"^[0-9a-f]{32}$"
JobId = Annotated[str, PathParam(pattern=JOB_ID, description="A check id, as POST /checks returned it.")]
# Swagger's "Authorize" button; auto_error off so that a missing token gets this API's own 401.
scheme = HTTPBearer(auto_error=False, description="A token of tsqa-serve.yaml: Authorization: Bearer TOKEN")
UNAUTHORIZED = {401: {"model": Problem, "description": "No token, or not a configured one."}}
FORBIDDEN = {403: {"model": Problem, "description": "A read token cannot do this."}}
NOT_FOUND = {404: {"model": Problem, "description": "No such check, root or file."}}


def config_of(request: Request) -> ServeConfig:
    return request.app.state.config


def store_of(request: Request) -> JobStore:
    return request.app.state.store


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)]) -> Principal:
    """Who calls: a bearer token, or (for reading only) the UI's session cookie. 401 otherwise."""
    config = config_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        token = match_token(config, credentials.credentials if credentials is not None else "")
        if token is not None:
            return Principal(token.name, token.role)
    elif request.method in SAFE_METHODS:
        found = session_principal(store_of(request), config, request.cookies.get(SESSION_COOKIE))
        if found is not None:
            return found
    client = request.client.host if request.client else "?"
    log.warning("refused %s %s from %s: %s", request.method, request.url.path, client,
                "a token that is not configured" if header is not None else "no token")
    raise HTTPException(401, "a valid token is needed: Authorization: Bearer TOKEN",
                        headers={"WWW-Authenticate": "Bearer"})


Reader = Annotated[Principal, Depends(principal)]


def submitter(who: Reader) -> Principal:
    if not who.can_submit:
        raise HTTPException(403, f"token {who.name} may read, not start or cancel checks")
    return who


Submitter = Annotated[Principal, Depends(submitter)]
router = APIRouter(prefix=PREFIX, responses=UNAUTHORIZED)
public = APIRouter(prefix=PREFIX)


def job_or_404(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no check {job_id}")
    return job


def submit_check(config: ServeConfig, store: JobStore, request: CheckRequest, who: Principal) -> Job:
    """Queue a check after confining it to its root; Refused (no job made) otherwise."""
    target = resolve_target(config, request.root, request.path)
    if request.spec is not None and request.spec not in config.spec_names():
        raise Refused(f"unknown spec {request.spec!r}; GET /api/v1/specs lists them")
    job = store.submit(target.root, target.path, request.spec, request.mode, request.subset, who.name)
    log.info("check %s queued by %s: root %s, path %r", job.id, who.name, job.root, job.path)
    return job


@public.get("/healthz", summary="Liveness: no token needed", response_model=Health)
def healthz(request: Request) -> Health:
    alive = request.app.state.worker.alive()
    return Health(status="ok" if alive else "degraded", worker=alive)


@router.post("/checks", status_code=202, summary="Start a check (a submit token)", response_model=Accepted,
             responses={**FORBIDDEN, 400: {"model": Problem, "description": "A path that leaves the root, a missing "
                                                                            "folder, an unknown spec."},
                        404: {"model": Problem, "description": "No such root."}})
def create_check(body: CheckRequest, request: Request, who: Submitter) -> Accepted:
    config = config_of(request)
    if body.root not in config.roots:
        raise HTTPException(404, f"no root {body.root!r}; GET {PREFIX}/roots lists them")
    try:
        job = submit_check(config, store_of(request), body, who)
    except Refused as exc:
        log.info("check refused for %s: %s", who.name, exc)
        raise HTTPException(400, str(exc)) from None
    return Accepted(id=job.id, state=job.state, url=f"{PREFIX}/checks/{job.id}")


@router.get("/checks", summary="Checks, newest first", response_model=list[CheckStatus])
def list_checks(request: Request, who: Reader, root: str | None = None,
                state: Annotated[list[State] | None, Query()] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[CheckStatus]:
    return [CheckStatus.of(j) for j in store_of(request).jobs(root, tuple(state) if state else None, limit)]


@router.get("/checks/{job_id}", summary="A check's state, progress, verdict and counts", response_model=CheckStatus,
            responses=NOT_FOUND)
def get_check(job_id: JobId, request: Request, who: Reader) -> CheckStatus:
    return CheckStatus.of(job_or_404(store_of(request), job_id))


@router.delete("/checks/{job_id}", status_code=202, summary="Cancel a check (a submit token)",
               response_model=CheckStatus,
               responses={**FORBIDDEN, **NOT_FOUND, 409: {"model": Problem, "description": "It has ended already."}})
def cancel_check(job_id: JobId, request: Request, who: Submitter) -> CheckStatus:
    store = store_of(request)
    job = job_or_404(store, job_id)
    if store.cancel(job.id) is None:
        raise HTTPException(409, f"check {job_id} has ended already ({store.get(job.id).state})")
    log.info("check %s cancelled by %s", job_id, who.name)
    return CheckStatus.of(store.get(job.id))


def report_file(config: ServeConfig, job: Job, name: str) -> Path:
    if job.state != "finished" or job.run is None:
        raise HTTPException(404, f"check {job.id} has no reports ({job.state})")
    path = (config.reports / job.run / name).resolve()
    if not path.is_relative_to(config.reports.resolve()) or not path.is_file():
        raise HTTPException(404, f"check {job.id} has no {name}")
    return path


@router.get("/checks/{job_id}/{name}", summary="A finished check's report.json, report.html, junit.xml, "
            "report.sarif, or its diff.json, diff.html, diff.md", response_class=FileResponse, responses=NOT_FOUND)
def check_file(job_id: JobId, name: Literal["report.json", "report.html", "junit.xml", "report.sarif", "diff.json",
                                          "diff.html", "diff.md"],
               request: Request, who: Reader) -> Response:
    job = job_or_404(store_of(request), job_id)
    path = report_file(config_of(request), job, name)
    if name.endswith(".html"):
        return HTMLResponse(based(path.read_text(encoding="utf-8"), f"/reports/{job.run}/"))
    return FileResponse(path, media_type={**REPORT_FILES, **DIFF_FILES}[name])


def based(html: str, folder: str) -> str:
    """A page served away from its folder, with a <base> naming that folder: its pictures (evidence/) and its link to
    the reports' index are relative to where it was written."""
    return html.replace("<head>", f'<head>\n<base href="{escape(folder, quote=True)}">', 1)


def root_info(config: ServeConfig, store: JobStore, root_id: str) -> RootInfo:
    root = config.roots[root_id]
    latest = store.jobs(root_id, ("finished",), limit=1)
    active = store.jobs(root_id, ("running", "queued"), limit=1000)[::-1]
    return RootInfo(id=root_id, kind="zip" if root.is_zip else "folder", path=str(root.path), spec=root.spec,
                    latest=CheckStatus.of(latest[0]) if latest else None, active=[CheckStatus.of(j) for j in active])


@router.get("/roots", summary="The roots checks may name, each with its latest verdict", response_model=list[RootInfo])
def list_roots(request: Request, who: Reader) -> list[RootInfo]:
    config = config_of(request)
    return [root_info(config, store_of(request), root_id) for root_id in config.roots]


@router.get("/roots/{root_id}/history", summary="A root's checks, newest first, with verdicts, counts and diffs",
            response_model=History, responses=NOT_FOUND)
def root_history(root_id: str, request: Request, who: Reader,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> History:
    if root_id not in config_of(request).roots:
        raise HTTPException(404, f"no root {root_id!r}")
    return History(root=root_id, checks=[CheckStatus.of(j) for j in store_of(request).jobs(root_id, limit=limit)])


@router.get("/specs", summary="The specs a check may name", response_model=list[SpecInfo])
def list_specs(request: Request, who: Reader) -> list[SpecInfo]:
    config = config_of(request)
    found = [(load_spec(name), "built-in") for name in builtin_spec_names()]
    found += [(load_spec(str(path)), "config") for path in config.specs]
    return [SpecInfo(id=s.id, title=s.title, classes=len(s.classes), expected_cases=s.expected_cases, origin=origin)
            for s, origin in found]
