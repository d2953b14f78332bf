"""Who may do what: bearer tokens against the config's hashes, the UI's session cookie and its CSRF token, request
size limits and the headers every response carries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.app.serve.config import Role, ServeConfig, Token, hash_token
from qa.app.serve.store import JobStore

log = logging.getLogger("tsqa.serve")
SESSION_COOKIE = "tsqa_session"
MAX_TOKEN_CHARS = 512
SAFE_METHODS = ("GET", "HEAD")
# Reports are generated pages with inline script and style; nothing they hold may load or send anything elsewhere.
# base-uri 'self': a report fetched through the API names its folder under /reports/ as its base (see api.py).
DEFAULT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self' 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'self'; "
               "frame-ancestors 'none'")

HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"),
           (b"cache-control", b"no-store"), (b"content-security-policy", DEFAULT_CSP.encode()))


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token's name (never the token) and its role."""

    name: str
    role: Role
    csrf: str | None = None  # the session's CSRF token, for UI forms

    @property
    def can_submit(self) -> bool:
        return self.role == "submit"


def match_token(config: ServeConfig, token: str) -> Token | None:
    """The configured token whose hash is the token's; every hash is compared, in constant time."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    digest = hash_token(token)
    found = None
    for candidate in config.tokens:
        if hmac.compare_digest(digest, candidate.token_sha256):
            found = candidate
    return found


def bearer(header: str | None) -> str | None:
    """The token of an 'Authorization: Bearer TOKEN' header, '' when the header is there but malformed."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def session_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def new_session(store: JobStore, config: ServeConfig, token: Token) -> str:
    """A new UI session for a token; returns the key the cookie carries (the database holds its hash)."""
    key = secrets.token_urlsafe(32)
    store.add_session(session_key_hash(key), token.name, token.token_sha256, secrets.token_urlsafe(32),
                      config.session_hours)
    return key


def session_principal(store: JobStore, config: ServeConfig, key: str | None) -> Principal | None:
    """Who a session cookie signs in, while its token is still configured with the same hash and role."""
    if not key or len(key) > MAX_TOKEN_CHARS:
        return None
    session = store.session(session_key_hash(key))
    if session is None:
        return None
    token = config.token_names().get(session.token_name)
    if token is None or not hmac.compare_digest(token.token_sha256, session.token_sha256):
        return None
    return Principal(token.name, token.role, session.csrf)


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """Whether a form's Origin header names this service (a missing Origin is judged by the CSRF token alone)."""
    if origin is None:
        return True
    if origin == "null" or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme == scheme and parts.netloc.lower() == host.lower()


def csrf_ok(principal: Principal, sent: str | None) -> bool:
    return bool(principal.csrf and sent) and hmac.compare_digest(principal.csrf.encode(), sent.encode())


async def _reply(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether they declare a length or arrive in chunks."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _reply(send, 413, f"the request body is larger than {self.limit} bytes")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await _reply(send, 413, f"the request body is larger than {self.limit} bytes")
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Headers on every response: no sniffing, no framing, no referrer to other sites (no-referrer would make a
    form's Origin "null"), no caching, and a content security policy
    unless the page set its own (the UI's pages carry a nonce for their one script)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
