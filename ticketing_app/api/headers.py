"""Security headers on every HTTP response of the app: Reflex's pages, its own endpoints and /api alike.

The Content-Security-Policy allows scripts only from the app's origin plus the exact inline scripts of the
page being served: Reflex's built pages carry a few inline scripts (the colour-mode switch, React Router's
hydration data and streaming helpers), and the API's docs page one. Their SHA-256 hashes are taken from
the response itself, so a rebuilt page never needs a list kept by hand, and an inline script injected into
a page by anyone else does not run. Two relaxations, unavoidable with Reflex 0.10:

- script-src 'unsafe-eval': a server event that runs client code (every `rx.toast`, `rx.call_script`) is
  executed by Reflex's client with `eval`. Such code only ever comes from this app's own backend.
- style-src 'unsafe-inline': emotion (Reflex's CSS-in-JS) and Radix insert <style> elements and style
  attributes at run time, so no hash list can cover them. Styles cannot run script.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import zlib
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketing_app.config import Settings, get_settings

log = logging.getLogger(__name__)

HSTS_SECONDS = 63_072_000  # two years, as hstspreload.org asks
# An inline script: a <script> without a src attribute, and its text.
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.I | re.S)
_MAX_HTML_BYTES = 4 * 1024 * 1024  # larger HTML is sent as it comes, without hashes (so: no inline scripts)


def websocket_origin(url: str) -> str:
    """ws(s)://host[:port] of an http(s) URL: where Reflex's client opens its event socket."""
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def http_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings, script_hashes: Sequence[str] = ()) -> str:
    """The policy for one response: `script_hashes` are the 'sha256-...' sources of its inline scripts."""
    api = settings.reflex_api_url
    connect = dict.fromkeys(["'self'", http_origin(api), websocket_origin(api)])
    scripts = ["'self'", "'unsafe-eval'", *dict.fromkeys(script_hashes)]
    directives = [
        "default-src 'self'",
        f"script-src {' '.join(scripts)}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        f"connect-src {' '.join(connect)}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def inline_script_hashes(html: bytes) -> list[str]:
    """The CSP hash source of each inline script in a page, in order, without repeats."""
    found = (base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() for m in _INLINE_SCRIPT.finditer(html))
    return [f"'sha256-{digest}'" for digest in dict.fromkeys(found)]


class SecurityHeaders:
    """ASGI middleware: adds the security headers to every HTTP response (websockets pass untouched).

    HTML bodies are collected (they are small, static files; one sent by path, granian's pathsend, is read
    from its file) to hash their inline scripts into the response's Content-Security-Policy; every other
    response streams through unchanged.
    """

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        self.app = app
        settings = settings or get_settings()
        self.settings = settings
        fixed = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if settings.app_env == "production":
            fixed.append((b"strict-transport-security", f"max-age={HSTS_SECONDS}; includeSubDomains".encode()))
        self.fixed = fixed
        self.plain_policy = content_security_policy(settings).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                headers = [(k, v) for k, v in given if k.lower() not in self._ours]
                message = {**message, "headers": headers + self.fixed}
                # A response with its own, stricter policy keeps it (file downloads: default-src 'none'; sandbox).
                own = next((v for k, v in given if k.lower() == b"content-security-policy"), None)
                if own is not None and not _is_html(headers):
                    message["headers"].append((b"content-security-policy", own))
                    await send(message)
                    return
                if _is_html(headers) and message["status"] != 304:
                    start = message  # held back until the body is known
                    return
                if message["status"] != 304:  # a 304 keeps the policy cached with its page
                    message["headers"].append((b"content-security-policy", self.plain_policy))
                await send(message)
                return
            if start is None:
                await send(message)
                return
            if message["type"] == "http.response.pathsend":  # granian sends a static page from its path
                held, start = start, None
                body = await asyncio.to_thread(_read_small, message["path"])
                policy = self._policy_for(body, held["headers"]) if body is not None else self.plain_policy
                held["headers"].append((b"content-security-policy", policy))
                await send(held)
                await send(message)
                return
            if message["type"] != "http.response.body":  # another extension: no body to hash
                held, start = start, None
                held["headers"].append((b"content-security-policy", self.plain_policy))
                await send(held)
                await send(message)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if message.get("more_body", False) and size <= _MAX_HTML_BYTES:
                return
            held, start = start, None
            body = b"".join(chunks)
            chunks.clear()
            policy = self._policy_for(body, held["headers"]) if size <= _MAX_HTML_BYTES else self.plain_policy
            held["headers"].append((b"content-security-policy", policy))
            await send(held)
            await send({**message, "body": body})

        await self.app(scope, receive, send_with_headers)

    _ours = frozenset(
        [
            b"content-security-policy",
            b"x-content-type-options",
            b"x-frame-options",
            b"referrer-policy",
            b"cross-origin-opener-policy",
            b"permissions-policy",
            b"strict-transport-security",
        ]
    )

    def _policy_for(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        encoding = next((v.strip().lower() for k, v in headers if k.lower() == b"content-encoding"), b"identity")
        try:
            if encoding == b"gzip":
                html = zlib.decompress(body, wbits=31)
            elif encoding == b"identity":
                html = body
            else:  # e.g. brotli: no decoder here; the page's inline scripts stay blocked, so say why
                log.warning("HTML sent with Content-Encoding %s: its inline scripts are not hashed", encoding)
                return self.plain_policy
        except zlib.error:
            return self.plain_policy
        return content_security_policy(self.settings, inline_script_hashes(html)).encode()


def _read_small(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            body = handle.read(_MAX_HTML_BYTES + 1)
    except OSError:
        return None
    return body if len(body) <= _MAX_HTML_BYTES else None


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/html") for k, v in headers)
