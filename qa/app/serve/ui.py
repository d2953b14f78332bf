"""The web UI: server-rendered pages (no CDN, one small inline script for live progress) behind a sign-in that keeps
the session in an HttpOnly, SameSite=Strict cookie; every form carries the session's CSRF token."""

from __future__ import annotations

import logging
import secrets
from functools import cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, PackageLoader
from pydantic import ValidationError

from qa.app.serve.api import config_of, store_of, submit_check
from qa.app.serve.confine import Refused
from qa.app.serve.models import PREFIX, REPORT_FILES, CheckRequest, CheckStatus
from qa.app.serve.security import (
    SESSION_COOKIE,
    Principal,
    csrf_ok,
    match_token,
    new_session,
    same_origin,
    session_key_hash,
    session_principal,
)
from qa.app.serve.store import Job
from qa.output.html.history import HistoryEntry, read_entry, spark
from qa.output.html.page import human_number
from qa.output.runs import REPORT

log = logging.getLogger("tsqa.serve")
router = APIRouter(include_in_schema=False)
TREND_RUNS = 30


class SignIn(HTTPException):
    """A page that needs a session, asked for without one: the handler sends the browser to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(303, "sign in first", headers={"Location": f"/login?next={quote(next_url, safe='/')}"})


@cache
def environment() -> Environment:
    loader = ChoiceLoader([PackageLoader("qa.app.serve", "templates"), PackageLoader("qa.output.html", "templates")])
    env = Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = human_number
    return env


def page(request: Request, template: str, status: int = 200, **values: object) -> HTMLResponse:
    """A rendered page whose one inline script (if any) runs by its nonce, and nothing else does."""
    nonce = secrets.token_urlsafe(16)
    html = environment().get_template(template).render(request=request, nonce=nonce, prefix=PREFIX, **values)
    csp = (f"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": csp})


def user(request: Request) -> Principal:
    found = session_principal(store_of(request), config_of(request), request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignIn(request.url.path)
    return found


User = Annotated[Principal, Depends(user)]


def guard_form(request: Request, who: Principal, csrf: str | None) -> None:
    """A form post must come from this service's own page: its Origin, when sent, and the session's CSRF token."""
    if not same_origin(request.headers.get("origin"), request.headers.get("host"), request.url.scheme) \
            or not csrf_ok(who, csrf):
        log.warning("refused a cross-site form post to %s from %s", request.url.path,
                    request.client.host if request.client else "?")
        raise HTTPException(403, "this form did not come from this service's page; reload it and try again")


def local_next(url: str | None) -> str:
    """Only a path of this service may follow the sign-in, never another site."""
    return url if url and url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html.j2", next=local_next(next), error=None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=512)],
          next: Annotated[str, Form(max_length=2048)] = "/") -> Response:
    if not same_origin(request.headers.get("origin"), request.headers.get("host"), request.url.scheme):
        raise HTTPException(403, "sign in from this service's own page")
    config = config_of(request)
    found = match_token(config, token.strip())
    if found is None:
        log.warning("sign-in refused from %s", request.client.host if request.client else "?")
        return page(request, "login.html.j2", status=401, next=local_next(next), error="That token is not valid.")
    key = new_session(store_of(request), config, found)
    log.info("%s signed in to the UI", found.name)
    response = RedirectResponse(local_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, key, max_age=int(config.session_hours * 3600), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout(request: Request, who: User, csrf: Annotated[str | None, Form()] = None) -> Response:
    guard_form(request, who, csrf)
    store_of(request).drop_session(session_key_hash(request.cookies.get(SESSION_COOKIE, "")))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def trend(config_reports: Path, jobs: list[Job]) -> tuple[list[HistoryEntry], object]:
    """The finished runs' index rows (from their run.json, as the reports index reads them) and their sparkline."""
    entries = [e for j in jobs if j.run is not None
               for e in [read_entry(config_reports / j.run / REPORT)] if e is not None]
    return entries, spark(entries[:TREND_RUNS])


@router.get("/", response_class=HTMLResponse)
def home(request: Request, who: User) -> HTMLResponse:
    return _home(request, who)


def _home(request: Request, who: Principal, error: str | None = None, form: dict | None = None,
          status: int = 200) -> HTMLResponse:
    config, store = config_of(request), store_of(request)
    roots = []
    for root_id, root in config.roots.items():
        finished = store.jobs(root_id, ("finished",), limit=TREND_RUNS)
        _, sparkline = trend(config.reports, finished)
        roots.append({"id": root_id, "root": root, "latest": CheckStatus.of(finished[0]) if finished else None,
                      "spark": sparkline, "runs": len(finished)})
    active = [CheckStatus.of(j) for j in store.jobs(states=("running", "queued"), limit=200)][::-1]
    recent = [CheckStatus.of(j) for j in store.jobs(limit=10)]
    return page(request, "home.html.j2", status=status, who=who, roots=roots, active=active, recent=recent,
                specs=config.spec_names(), error=error, form=form or {})


@router.post("/ui/checks")
def start_check(request: Request, who: User, root: Annotated[str, Form(max_length=64)],
                path: Annotated[str, Form(max_length=1024)] = "", spec: Annotated[str, Form(max_length=128)] = "",
                mode: Annotated[str, Form(max_length=8)] = "deep", subset: Annotated[str | None, Form()] = None,
                csrf: Annotated[str | None, Form()] = None) -> Response:
    guard_form(request, who, csrf)
    form = {"root": root, "path": path, "spec": spec, "mode": mode, "subset": subset is not None}
    if not who.can_submit:
        return _home(request, who, f"token {who.name} may read, not start checks", form, status=403)
    try:
        body = CheckRequest(root=root, path=path, spec=spec or None, mode=mode, subset=subset is not None)
        job = submit_check(config_of(request), store_of(request), body, who)
    except (Refused, ValidationError) as exc:
        message = str(exc) if isinstance(exc, Refused) else exc.errors()[0]["msg"]
        return _home(request, who, message, form, status=400)
    return RedirectResponse(f"/ui/checks/{job.id}", status_code=303)


def _job(request: Request, job_id: str) -> Job:
    job = store_of(request).get(job_id) if len(job_id) == 32 else None
    if job is None:
        raise HTTPException(404, f"no check {job_id}")
    return job


@router.get("/ui/checks/{job_id}", response_class=HTMLResponse)
def check_page(request: Request, job_id: str, who: User) -> HTMLResponse:
    job = _job(request, job_id)
    return page(request, "check.html.j2", who=who, check=CheckStatus.of(job), files=list(REPORT_FILES),
                report_page=f"/reports/{job.run}/report.html" if job.run else None)


@router.post("/ui/checks/{job_id}/cancel")
def cancel(request: Request, job_id: str, who: User, csrf: Annotated[str | None, Form()] = None) -> Response:
    guard_form(request, who, csrf)
    if not who.can_submit:
        raise HTTPException(403, f"token {who.name} may read, not cancel checks")
    job = _job(request, job_id)
    if store_of(request).cancel(job.id) is not None:
        log.info("check %s cancelled by %s", job.id, who.name)
    return RedirectResponse(f"/ui/checks/{job.id}", status_code=303)


@router.get("/ui/roots/{root_id}", response_class=HTMLResponse)
def root_page(request: Request, root_id: str, who: User) -> HTMLResponse:
    config, store = config_of(request), store_of(request)
    if root_id not in config.roots:
        raise HTTPException(404, f"no root {root_id}")
    jobs = store.jobs(root_id, limit=500)
    _, sparkline = trend(config.reports, [j for j in jobs if j.state == "finished"])
    has_index = (config.reports / root_id / "index.html").is_file()
    return page(request, "root.html.j2", who=who, root_id=root_id, root=config.roots[root_id],
                checks=[CheckStatus.of(j) for j in jobs], runs={j.id: j.run for j in jobs}, spark=sparkline,
                index=f"/reports/{root_id}/index.html" if has_index else None)
