"""A scriptable fake of the Gemini REST API (``generateContent`` only) for tests.

It is a real HTTP server on 127.0.0.1, so the real ``google-genai`` client (retries, time-outs, error
mapping) runs against it unchanged::

    with FakeGeminiServer() as fake:
        fake.enqueue(ScriptedResponse(status=429, body=error_body(429, "slow down")))
        fake.enqueue(ScriptedResponse(body=candidate_body({"category": "bug", ...})))
        provider = GeminiTriageProvider(api_key="k", model="gemini-test", base_url=fake.base_url)
        ...
        assert fake.request_count == 2

Answers are taken from the queue first (first in, first out); when the queue is empty the default is
used: a ``ScriptedResponse`` or a responder (a callable that gets the ``RecordedRequest`` and returns a
``ScriptedResponse`` or a plain dict, which is sent as a 200 JSON body). ``keyword_triage_responder()``
builds a responder that computes a plausible triage answer from the ticket text, for end-to-end tests.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_VERSION = "v1beta"
_PATH = re.compile(rf"^/{API_VERSION}/models/(?P<model>[^/:?]+):generateContent$")


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer of the fake.

    body: dict or list -> sent as JSON; str or bytes -> sent as is (e.g. a broken body); None -> empty.
    delay: seconds to wait before answering (interrupted when the server stops).
    disconnect: close the connection without answering (a transport error on the client side).
    """

    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    disconnect: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """What the fake received (recorded on arrival, before any scripted delay)."""

    method: str
    path: str
    model: str | None
    headers: dict[str, str]  # names lower-cased
    raw_body: bytes
    body: Any  # parsed JSON, or None when the body was not JSON

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")

    @property
    def system_instruction(self) -> str:
        """All text parts of the system instruction, joined with newlines."""
        if not isinstance(self.body, dict):
            return ""
        return _parts_text(self.body.get("systemInstruction") or self.body.get("system_instruction"))

    @property
    def contents_text(self) -> str:
        """All text parts of all ``contents`` entries, joined with newlines."""
        if not isinstance(self.body, dict):
            return ""
        contents = self.body.get("contents") or []
        if isinstance(contents, dict):
            contents = [contents]
        return "\n".join(_parts_text(item) for item in contents if isinstance(item, dict))

    @property
    def generation_config(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            return {}
        config = self.body.get("generationConfig") or self.body.get("generation_config") or {}
        return config if isinstance(config, dict) else {}

    @property
    def response_schema(self) -> dict[str, Any]:
        config = self.generation_config
        schema = config.get("responseSchema") or config.get("responseJsonSchema") or {}
        return schema if isinstance(schema, dict) else {}


Responder = Callable[[RecordedRequest], "ScriptedResponse | Mapping[str, Any]"]


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    return "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


# ---------------------------------------------------------------------------------------------------------
# Body builders


def candidate_body(
    answer: Any,
    *,
    finish_reason: str = "STOP",
    prompt_tokens: int = 1,
    candidate_tokens: int = 1,
) -> dict[str, Any]:
    """A successful ``generateContent`` body whose single candidate's text is ``answer``.

    answer: a str is used as the text verbatim (so malformed JSON can be scripted); anything else is
    JSON-encoded.
    """
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_tokens + candidate_tokens,
        },
        "modelVersion": "fake-gemini",
    }


def blocked_prompt_body(reason: str = "SAFETY") -> dict[str, Any]:
    """The prompt itself was blocked: no candidates, only promptFeedback."""
    return {
        "promptFeedback": {"blockReason": reason},
        "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
    }


def blocked_candidate_body(finish_reason: str = "SAFETY") -> dict[str, Any]:
    """A candidate that stopped for a safety (or other) reason and carries no text."""
    return {
        "candidates": [{"finishReason": finish_reason, "index": 0}],
        "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1},
    }


def error_body(code: int, message: str = "", status: str | None = None) -> dict[str, Any]:
    """The error envelope Google APIs use."""
    if status is None:
        status = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }.get(code, "UNKNOWN")
    return {"error": {"code": code, "message": message or HTTPStatus(code).phrase, "status": status}}


def triage_answer(
    *,
    category: Any = "bug",
    priority: Any = "medium",
    required_skills: Any = (),
    summary: Any = "The customer reports a problem.",
    helpful_notes: Any = "- Reproduce the problem\n- Ask for screenshots",
    confidence: Any = 0.8,
    **extra: Any,
) -> dict[str, Any]:
    """A triage JSON answer in the shape the provider's response schema asks for.

    Values are not checked, so tests can script schema violations (``priority="urgent"``,
    ``summary=None``...). ``confidence=None`` leaves the field out; ``extra`` adds or overrides fields.
    """
    answer: dict[str, Any] = {
        "category": category,
        "priority": priority,
        "required_skills": list(required_skills) if isinstance(required_skills, tuple) else required_skills,
        "summary": summary,
        "helpful_notes": helpful_notes,
    }
    if confidence is not None:
        answer["confidence"] = confidence
    answer.update(extra)
    return answer


def ok(answer: Any, **kwargs: Any) -> ScriptedResponse:
    """Shortcut: a 200 answer whose candidate text is ``answer`` (see ``candidate_body``)."""
    return ScriptedResponse(body=candidate_body(answer), **kwargs)


def fail(code: int, message: str = "", **kwargs: Any) -> ScriptedResponse:
    """Shortcut: an error answer with the Google error envelope."""
    return ScriptedResponse(status=code, body=error_body(code, message), **kwargs)


# ---------------------------------------------------------------------------------------------------------
# A responder that computes a plausible answer, for end-to-end tests

_TICKET_BLOCK = re.compile(r"BEGIN TICKET[^\n]*\n(?P<data>.*?)\n[^\n]*END TICKET", re.S)
_VOCABULARY = re.compile(r"SKILL VOCABULARY \(JSON array\):\s*(?P<json>\[.*?\])\s*$", re.M)

DEFAULT_KEYWORD_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (category, priority, keywords) - the first rule with a keyword in the ticket text wins.
    ("security", "high", ("hacked", "breach", "leaked", "vulnerability", "phishing", "compromised")),
    ("performance", "high", ("outage", "is down", "everyone", "all users")),
    ("account_access", "medium", ("password", "login", "log in", "locked", "2fa", "sso", "sign in")),
    ("billing", "medium", ("charge", "refund", "invoice", "billing", "payment", "subscription")),
    ("performance", "medium", ("slow", "timeout", "timed out", "latency")),
    ("integration", "medium", ("webhook", "api", "integration", "connector", "smtp")),
    ("data", "medium", ("export", "import", "missing data", "report", "csv")),
    ("bug", "medium", ("error", "crash", "broken", "bug", "doesn't work", "does not work", "500")),
    ("feature_request", "low", ("feature", "would be nice", "please add", "suggestion")),
    ("how_to", "low", ("how do i", "how to", "how can i", "where can i")),
)


def extract_ticket(request: RecordedRequest) -> tuple[str, str]:
    """(title, description) of the ticket in a request, best effort.

    Understands the provider's delimited JSON block; otherwise the whole contents text is the description.
    """
    text = request.contents_text
    match = _TICKET_BLOCK.search(text)
    if match:
        try:
            data = json.loads(match.group("data"))
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return str(data.get("title", "")), str(data.get("description", ""))
        return "", match.group("data")
    return "", text


def extract_vocabulary(request: RecordedRequest) -> list[str]:
    """The skill vocabulary the provider put in the system instruction, best effort."""
    match = _VOCABULARY.search(request.system_instruction)
    if not match:
        return []
    try:
        values = json.loads(match.group("json"))
    except json.JSONDecodeError:
        return []
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def keyword_triage_responder(
    rules: Iterable[tuple[str, str, Iterable[str]]] = DEFAULT_KEYWORD_RULES,
    *,
    default_category: str = "other",
    default_priority: str = "low",
    confidence: float = 0.7,
) -> Responder:
    """A responder that triages by keywords, like a (very) simple model would.

    The category is always one the request's response schema allows (falls back to ``default_category``
    or the first allowed one); skills are the vocabulary entries whose text occurs in the ticket.
    """
    rule_list = [(c, p, tuple(k.lower() for k in kws)) for c, p, kws in rules]

    def respond(request: RecordedRequest) -> ScriptedResponse:
        title, description = extract_ticket(request)
        text = f"{title}\n{description}".lower()
        allowed = request.response_schema.get("properties", {}).get("category", {}).get("enum") or []
        category, priority = default_category, default_priority
        for rule_category, rule_priority, keywords in rule_list:
            if (not allowed or rule_category in allowed) and any(k in text for k in keywords):
                category, priority = rule_category, rule_priority
                break
        if allowed and category not in allowed:
            category = "other" if "other" in allowed else allowed[0]
        skills = [s for s in extract_vocabulary(request) if s and s.lower() in text][:5]
        first_line = (title or description).strip().splitlines()[0] if (title or description).strip() else ""
        summary = f"Customer writes about: {first_line[:200]}" if first_line else "Empty ticket."
        notes = f"- Category guessed from keywords: {category}\n- Check the ticket details with the customer"
        answer = triage_answer(
            category=category,
            priority=priority,
            required_skills=skills,
            summary=summary,
            helpful_notes=notes,
            confidence=confidence,
        )
        return ScriptedResponse(body=candidate_body(answer))

    return respond


# ---------------------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        path = self.path
        match = _PATH.match(path.split("?", 1)[0])
        record = RecordedRequest(
            method="POST",
            path=path,
            model=match.group("model") if match else None,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_body=raw,
            body=parsed,
        )
        fake = self.server.fake
        fake._record(record)
        if not match:
            self._send(ScriptedResponse(status=404, body=error_body(404, f"No route for {path}")))
            return
        self._send(fake._next_response(record))

    def do_GET(self) -> None:
        self._send(ScriptedResponse(status=404, body=error_body(404, "Only generateContent is faked")))

    def _send(self, response: ScriptedResponse) -> None:
        fake = self.server.fake
        if response.delay > 0 and fake._stopping.wait(response.delay):
            self.close_connection = True
            return
        if response.disconnect:
            self.close_connection = True
            return
        body = response.body
        if body is None:
            payload, content_type = b"", "application/json; charset=UTF-8"
        elif isinstance(body, bytes):
            payload, content_type = body, "text/plain; charset=UTF-8"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=UTF-8"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json; charset=UTF-8"
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type or content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            # The client gave up (e.g. its time-out fired during our scripted delay).
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    allow_reuse_address = True

    def __init__(self, fake: FakeGeminiServer, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # connections the client dropped are expected in time-out tests


class FakeGeminiServer:
    """A threaded fake of ``POST /v1beta/models/{model}:generateContent`` on 127.0.0.1."""

    def __init__(
        self,
        default: ScriptedResponse | Responder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self._queue: deque[ScriptedResponse | Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._default: ScriptedResponse | Responder = default if default is not None else ok(triage_answer())
        self._stopping = threading.Event()
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeGeminiServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self, (self._host, self._port))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gemini", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a scripted delay
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeGeminiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:41234/`` - pass it as the client's base_url (the SDK adds /v1beta/...)."""
        if self._server is None:
            raise RuntimeError("FakeGeminiServer is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    # -- scripting -----------------------------------------------------------------------------------------

    def enqueue(self, *responses: ScriptedResponse | Responder) -> None:
        """Answers for the next requests, in order; each one is used once."""
        with self._lock:
            self._queue.extend(responses)

    def set_default(self, response: ScriptedResponse | Responder) -> None:
        """The answer used whenever the queue is empty."""
        with self._lock:
            self._default = response

    @property
    def pending(self) -> int:
        """How many queued answers have not been used yet."""
        with self._lock:
            return len(self._queue)

    # -- recording -----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the fake Gemini server received no request")
            return self._requests[-1]

    def reset(self) -> None:
        """Forget recorded requests and queued answers (the default stays)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # -- internals -----------------------------------------------------------------------------------------

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def _next_response(self, record: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            item = self._queue.popleft() if self._queue else self._default
        if isinstance(item, ScriptedResponse):
            return item
        try:
            produced = item(record)
        except Exception as exc:  # a broken responder should show up as a 500, not hang the test
            return ScriptedResponse(status=500, body=error_body(500, f"responder failed: {exc!r}"))
        if isinstance(produced, ScriptedResponse):
            return produced
        return ScriptedResponse(body=dict(produced))
