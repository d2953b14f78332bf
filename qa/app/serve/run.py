"""`tsqa serve`: run the service on uvicorn, or a demo of it on a generated sample release."""

from __future__ import annotations

import logging
import secrets
import signal
from pathlib import Path

import uvicorn

from qa.app.demo import DEMO_FAULTS, DEMO_SPEC
from qa.app.serve.app import create_app
from qa.app.serve.config import ServeConfig, hash_token, parse_config
from qa.app.serve.store import JobStore
from qa.rules.spec import load_spec
from qa.synth.sample import make_sample

DEMO_CASES = 4
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(config: ServeConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted: the web process here, the worker process beside it. A TLS proxy on this machine
    (127.0.0.1, uvicorn's default for trusted forwarding headers) makes cookies Secure and Origin checks https."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again to end as its sender expects: by the signal,
    # which service managers count as a clean stop (not through tsqa check's handler, exit 143, which they do not)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    uvicorn.run(create_app(config), host=host or config.host, port=config.port if port is None else port,
                log_level="info", server_header=False, limit_concurrency=256,
                timeout_graceful_shutdown=20)


def demo_config(folder: Path, port: int) -> tuple[ServeConfig, str]:
    """A sample release with known faults in `folder`, a config serving it, one queued check, and the token."""
    spec = load_spec(DEMO_SPEC)
    release = folder / "release"
    make_sample(release, spec, cases=DEMO_CASES, faults=DEMO_FAULTS)
    token = secrets.token_urlsafe(24)
    config = parse_config({"roots": {"demo": {"path": str(release), "spec": spec.id}}, "data": str(folder / "data"),
                           "port": port, "tokens": [{"name": "demo", "role": "submit",
                                                     "token_sha256": hash_token(token)}]},
                          "demo config", folder)
    JobStore(config.db).submit("demo", "", None, "deep", True, "demo")
    return config, token
