"""The web application: the API, the UI and the reports behind tokens, and the worker process started beside it."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from qa import __version__
from qa.app.serve import api, ui
from qa.app.serve.config import ServeConfig
from qa.app.serve.confine import CONTROL
from qa.app.serve.models import PREFIX
from qa.app.serve.security import HEADERS, BodyLimit, Principal, SecurityHeaders
from qa.app.serve.store import JobStore
from qa.app.serve.worker import INTERRUPTED

log = logging.getLogger("tsqa.serve")
STOP_S = 15.0
OPENAPI_URL = f"{PREFIX}/openapi.json"
DOCS_ASSETS = "/docs-assets"
REPORT_FILES = {"report.html", "report.json", "index.html", "diff.html", "diff.json", "diff.md", "junit.xml",
                "report.sarif", "run.json", "latest.json"}
DESCRIPTION = ("Start, watch and cancel tsqa checks of configured dataset roots, and fetch their reports. Every "
               "request but `GET /api/v1/healthz` needs `Authorization: Bearer TOKEN`; `read` tokens cannot start or "
               "cancel checks. The API is versioned by its path: within v1 fields are added, never removed, "
               "renamed or retyped.")


class Worker:
    """The worker process (qa.app.serve.worker) that runs the checks, given the config on its stdin."""

    def __init__(self, config: ServeConfig, enabled: bool = True) -> None:
        self.config, self.enabled = config, enabled
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Mark the checks a previous run of the service left running failed, then start the worker."""
        if not self.enabled:
            return
        for job_id in JobStore(self.config.db).fail_interrupted(INTERRUPTED):
            log.warning("check %s was running when the service stopped: marked failed", job_id)
        # -P: the tsqa this service runs, never a `qa` folder that happens to be in the current directory
        self.process = subprocess.Popen([sys.executable, "-P", "-m", "qa.app.serve.worker"], stdin=subprocess.PIPE)
        self.process.stdin.write(self.config.model_dump_json().encode())
        self.process.stdin.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def create_app(config: ServeConfig, worker: bool = True) -> FastAPI:
    """The service for a validated config; `worker=False` serves without running checks (they stay queued)."""
    config.data.mkdir(parents=True, exist_ok=True)
    config.reports.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.worker.start()
        log.info("tsqa serve: %d roots, data in %s", len(config.roots), config.data)
        try:
            yield
        finally:
            app.state.worker.stop()

    app = FastAPI(title="tsqa", version=__version__, summary="Release QA for segmentation datasets, as a service",
                  description=DESCRIPTION, lifespan=lifespan, openapi_url=OPENAPI_URL, docs_url=None,
                  redoc_url=None)
    app.state.config = config
    app.state.store = JobStore(config.db)
    app.state.worker = Worker(config, worker)
    app.include_router(api.public)
    app.include_router(api.router)
    app.include_router(ui.router)
    _docs(app)
    _reports(app, config)
    app.add_exception_handler(Exception, _internal_error)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    # The last added is outermost: the security headers go on the body limit's 413 too.
    app.add_middleware(BodyLimit, limit=config.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    _protect_openapi(app)
    return app


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug answers 500 with no trace; the trace goes to the service log. Starlette answers it outside every
    middleware, so the security headers are set here."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the service log has the details"}, status_code=500,
                        headers={k.decode(): v.decode() for k, v in HEADERS})


def _protect_openapi(app: FastAPI) -> None:
    """The OpenAPI document behind a token like the rest (FastAPI serves it openly by default)."""
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != OPENAPI_URL]

    @app.get(OPENAPI_URL, include_in_schema=False)
    def openapi(who: Annotated[Principal, Depends(api.principal)]) -> JSONResponse:
        return JSONResponse(app.openapi())


def _docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files installed with fastapi-offline, not from a CDN."""
    assets = resources.files("fastapi_offline") / "static"

    @app.get("/docs", include_in_schema=False)
    def docs(who: Annotated[Principal, Depends(api.principal)]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="tsqa API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    def docs_asset(name: str, who: Annotated[Principal, Depends(api.principal)]) -> FileResponse:
        if name not in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
            raise HTTPException(404, "no such file")
        return FileResponse(str(assets / name))


def _reports(app: FastAPI, config: ServeConfig) -> None:
    """The reports folder as written (each root's index.html and run folders), so that its relative links work."""
    base = config.reports.resolve()

    @app.get("/reports/{rest:path}", include_in_schema=False)
    def report_path(rest: str, who: Annotated[Principal, Depends(api.principal)]) -> FileResponse:
        parts = rest.split("/")
        evidence = len(parts) >= 2 and parts[-2] == "evidence" and parts[-1].endswith(".png")
        if ((not evidence and parts[-1] not in REPORT_FILES) or any(p in ("", ".", "..") for p in parts)
                or CONTROL.search(rest)):
            raise HTTPException(404, "no such report file")
        path = (base / rest).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            raise HTTPException(404, "no such report file")
        return FileResponse(path)
