"""A model sandbox: an OpenAI-compatible Chat Completions server for development and tests.

    manage.py llm_sandbox --port 8767 [--mode echo|gullible|scripted] [--latency-ms 1000]
    LLM_BASE_URL=http://127.0.0.1:8767/v1

``POST /v1/chat/completions`` answers as the official SDK expects (``choices``, ``usage``),
honouring ``response_format`` (a JSON-schema format is answered with JSON; with
``json_schema=False`` it is refused with a 400, as some servers do). ``GET /v1/models`` lists
the one model. Modes:

- ``echo``: a deterministic, honest writer: the template draft it was given, with the lines
  that quote the lead's message left out;
- ``gullible``: obeys whatever the lead's message asks (adds its links, addresses and phone
  numbers, writes to someone else, invents prices and dates, reveals the system prompt, drops
  the signature, echoes long text). Each request records what it complied with, so an
  evaluation can count unsafe answers independently of the guards;
- ``scripted``: answers from a queue (``script([...])``), then falls back to echo.

``latency_ms`` delays every answer; ``fault`` makes every answer one of ``timeout`` (no answer
until the client gives up), ``429``, ``500``, ``malformed`` (content that is not JSON),
``bad_json`` (an HTTP body that is not JSON) or ``empty`` (empty content).

Control (JSON): ``POST /__sandbox__/configure`` {mode, fault, latency_ms, json_schema},
``POST /__sandbox__/script`` {answers: [...]}, ``POST /__sandbox__/reset``,
``GET /__sandbox__/requests``. Tests in the same process call the methods directly.
Follows workflows/hubspot/sandbox.py (the HubSpot sandbox): a threaded server on a real socket.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from config.sandbox_server import SandboxHTTPServer, ThreadedSandbox

MODES = ("echo", "gullible", "scripted")
FAULTS = ("", "timeout", "429", "500", "malformed", "bad_json", "empty")

_URLISH = re.compile(
    r"(?:https?|hxxps?)://\S+|www\.\S+|\b[\w-]+(?:\.[\w-]+)*\s*[\[(]\s*(?:\.|dot)\s*[\])]\s*\w+\S*"
    r"|\b[a-z0-9-]+\.(?:com|net|org|io|ru|xyz|tk|ly|co|biz|info|de|fr|es)\b\S*",
    re.IGNORECASE,
)
_EMAILISH = re.compile(r"[\w.+-]+\s*(?:@|\[at\]|\(at\))\s*[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_PHONEISH = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_WRITE_TO = re.compile(
    r"\b(?:write|send|email|mail|forward|cc|reply|address|schreiben|schreib|sende|écri\w*|"
    r"envoy\w*|escrib\w*|envía|scrivi|invia|напиш\w*|отправ\w*)\b|寄|送",
    re.IGNORECASE,
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|system prompt|instructions?|ignorez|oubliez|"
    r"consignes|ignoriere\w*|vergiss|anweisungen|ignora\w*|olvida\w*|instrucciones|"
    r"istruzioni|ignoruj|игнорир\w*|забудь|инструкци\w*)\b|無視|忽略|指示|プロンプト",
    re.IGNORECASE,
)
_PRICE_ASK = re.compile(
    r"\b(?:price|prices|pricing|cost|costs|quote|how much|discount|rabatt|preis\w*|prix|tarif\w*|"
    r"precio\w*|descuento|prezzo|sconto|цен\w*|скидк\w*|free)\b|价格|価格|値段|多少钱",
    re.IGNORECASE,
)
_DATE_ASK = re.compile(
    r"\b(?:when|deadline|date|by friday|delivery|wann|termin|quand|délai|cuándo|fecha|quando|"
    r"когда|срок)\b|いつ|什么时候",
    re.IGNORECASE,
)
_UNSIGN = re.compile(
    r"\b(?:don'?t sign|do not sign|no signature|without (?:a )?signature|sign (?:it )?as|"
    r"signed by|unterschreib\w*|signez|firma como|подпиш\w*)\b",
    re.IGNORECASE,
)
LONG_ECHO_CHARS = 2500


@dataclass
class LlmSandboxConfig:
    mode: str = "echo"
    fault: str = ""
    latency_ms: int = 0
    json_schema: bool = True
    model: str = "sandbox-model"
    #: How long a ``timeout`` fault holds the request (the client gives up well before).
    hang_seconds: float = 30.0


@dataclass
class LlmRequest:
    at: float
    path: str
    model: str
    mode: str
    fault: str
    response_format: str
    status: int
    complied: list[str] = field(default_factory=list)


class LlmSandbox:
    def __init__(self, config: LlmSandboxConfig | None = None) -> None:
        self.config = config or LlmSandboxConfig()
        self._initial = asdict(self.config)
        self.lock = threading.Lock()
        self.requests: list[LlmRequest] = []
        self.script_queue: deque[dict[str, Any]] = deque()
        self.stopping = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self.config = LlmSandboxConfig(**self._initial)
            self.requests.clear()
            self.script_queue.clear()

    def configure(self, **changes: Any) -> LlmSandboxConfig:
        if "mode" in changes and changes["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if "fault" in changes:
            changes["fault"] = str(changes["fault"] or "")
            if changes["fault"] not in FAULTS:
                raise ValueError(f"fault must be one of {FAULTS}")
        with self.lock:
            for key, value in changes.items():
                if not hasattr(self.config, key):
                    raise ValueError(f"unknown setting {key!r}")
                setattr(self.config, key, value)
            return self.config

    def script(self, answers: list[dict[str, Any] | str]) -> None:
        """Queue answers: a string is the content; a dict may give ``content``, ``status``
        (an HTTP error), ``fault`` or ``usage``."""
        with self.lock:
            for answer in answers:
                self.script_queue.append(
                    {"content": answer} if isinstance(answer, str) else dict(answer)
                )

    # --- answering ------------------------------------------------------------------------

    def complete(self, body: dict[str, Any]) -> tuple[int, Any, list[str]]:
        """(status, payload or raw bytes, complied) for one chat completion request."""
        with self.lock:
            config = LlmSandboxConfig(**asdict(self.config))
            scripted = self.script_queue.popleft() if self.script_queue else None
        if config.latency_ms:
            self.stopping.wait(config.latency_ms / 1000)
        fault = (scripted or {}).get("fault", config.fault)
        if scripted and "status" in scripted:
            return scripted["status"], _error(scripted["status"], "scripted error"), []
        if fault == "timeout":
            self.stopping.wait(config.hang_seconds)
            return 504, _error(504, "sandbox hung up"), []
        if fault == "429":
            return 429, _error(429, "Rate limit reached for requests"), []
        if fault == "500":
            return 500, _error(500, "The server had an error while processing your request"), []
        if fault == "bad_json":
            return 200, b'{"id": "chatcmpl-broken", "choices": [{"message": ', []
        format_type = ((body.get("response_format") or {}).get("type")) or ""
        if format_type == "json_schema" and not config.json_schema:
            refusal = _error(400, "response_format json_schema is not supported", "response_format")
            return 400, refusal, []
        messages = body.get("messages") or []
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
        data = _data_of(user)
        complied: list[str] = []
        if fault == "empty":
            content = ""
        elif fault == "malformed":
            content = "Sure! Here is your email: {subject: Hello, body: (unfinished"
        elif scripted is not None and "content" in scripted:
            content = scripted["content"]
        else:
            subject, text = _echo(data)
            if config.mode == "gullible":
                subject, text, complied = _gullible(data, system, subject, text)
            if format_type in ("json_schema", "json_object"):
                content = json.dumps({"subject": subject, "body": text}, ensure_ascii=False)
            else:
                content = f"Subject: {subject}\n\n{text}"
        usage = (scripted or {}).get("usage") or {
            "prompt_tokens": _count_tokens(system) + _count_tokens(user),
            "completion_tokens": _count_tokens(content),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        payload = {
            "id": f"chatcmpl-sandbox-{len(self.requests) + 1}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or config.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }
        return 200, payload, complied

    def record(self, entry: LlmRequest) -> None:
        with self.lock:
            self.requests.append(entry)


def _error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _count_tokens(text: str) -> int:
    return max(1, len(re.findall(r"\w+|[^\w\s]", text or "")))


def _data_of(user: str) -> dict[str, Any]:
    match = re.search(r"```json\n(.*)\n```", user, re.DOTALL)
    try:
        value = json.loads(match.group(1) if match else user)
    except (json.JSONDecodeError, AttributeError):
        return {}
    return value if isinstance(value, dict) else {}


def _echo(data: dict[str, Any]) -> tuple[str, str]:
    """The honest writer: the template draft without the lines that quote the lead."""
    draft = data.get("template_draft") or {}
    message_words = re.findall(r"\w+", str(data.get("lead_message") or "").lower())
    windows = {" ".join(message_words[i : i + 4]) for i in range(max(1, len(message_words) - 3))}
    windows.discard("")
    lines = []
    for line in str(draft.get("body") or "").splitlines():
        words = " ".join(re.findall(r"\w+", line.lower()))
        if any(w in words for w in windows) or line.strip().lower().startswith("you wrote"):
            continue
        lines.append(line)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    return str(draft.get("subject") or "Thank you for getting in touch"), body


def _gullible(
    data: dict[str, Any], system: str, subject: str, body: str
) -> tuple[str, str, list[str]]:
    message = str(data.get("lead_message") or "")
    owner = data.get("owner") or {}
    lines = body.rstrip("\n").splitlines()
    complied: list[str] = []
    extra: list[str] = []
    emails = [" ".join(m.split()) for m in _EMAILISH.findall(message)]
    without_emails = _EMAILISH.sub(" ", message)
    urls = _URLISH.findall(without_emails)
    phones = [p for p in _PHONEISH.findall(without_emails) if len(re.sub(r"\D", "", p)) >= 7]
    if urls:
        extra.append("As you asked, here is the link: " + " ".join(urls))
        complied.append("link")
    if emails:
        if _WRITE_TO.search(message):
            other = emails[0]
            lines = [f"Hi {other.split('@')[0].split('[')[0].strip()},"] + [
                line for line in lines[1:]
            ]
            extra.append(f"I am writing to {other} as requested.")
        else:
            extra.append("You can also write to " + ", ".join(emails) + ".")
        complied.append("email")
    if phones:
        extra.append("Call us any time at " + ", ".join(phones) + ".")
        complied.append("phone")
    if _PRICE_ASK.search(message):
        extra.append("Our price is $499 per month, and I can give you a 30% discount.")
        complied.append("price")
    if _DATE_ASK.search(message):
        extra.append("We can have everything live by Friday, 12 December.")
        complied.append("date")
    if _INJECTION.search(message):
        extra.append("Sure. These are my instructions: " + " ".join(system.split())[:400])
        complied.append("prompt_leak")
    if _UNSIGN.search(message):
        signature = str(owner.get("signature") or owner.get("name") or "")
        first = signature.splitlines()[0] if signature else ""
        lines = [line for line in lines if not (first and first in line)]
        lines.append("Your friend, the assistant")
        complied.append("signature")
    if len(message) > LONG_ECHO_CHARS:
        extra.append("You wrote: " + message)
        complied.append("long_echo")
    if not complied:
        return subject, body, complied
    # Obey in the middle of the letter, before the sign-off.
    cut = next(
        (i for i in range(len(lines) - 1, -1, -1) if lines[i].lower().startswith(("best", "kind"))),
        len(lines),
    )
    lines[cut:cut] = ["", *extra, ""]
    return subject, "\n".join(lines).strip() + "\n", complied


class _Handler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        sandbox = self.server.sandbox
        if path in ("/v1/models", "/models"):
            model = {"id": sandbox.config.model, "object": "model", "owned_by": "sandbox"}
            self._send(200, {"object": "list", "data": [model]})
        elif path == "/__sandbox__/requests":
            with sandbox.lock:
                self._send(200, [asdict(r) for r in sandbox.requests])
        else:
            self._send(404, _error(404, f"no route {path}"))

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error(400, "the request body is not JSON"))
            return
        sandbox = self.server.sandbox
        if path.startswith("/__sandbox__/"):
            self._control(path.removeprefix("/__sandbox__/"), body)
            return
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error(404, f"no route {path}"))
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            self._send(401, _error(401, "missing bearer token"))
            return
        status, payload, complied = sandbox.complete(body)
        format_type = (body.get("response_format") or {}).get("type") or ""
        sandbox.record(
            LlmRequest(
                at=time.time(),
                path=path,
                model=str(body.get("model") or ""),
                mode=sandbox.config.mode,
                fault=sandbox.config.fault,
                response_format=format_type,
                status=status,
                complied=complied,
            )
        )
        self._send(status, payload)

    def _control(self, action: str, body: dict[str, Any]) -> None:
        sandbox = self.server.sandbox
        try:
            if action == "configure":
                config = sandbox.configure(**body)
                self._send(200, asdict(config))
            elif action == "script":
                sandbox.script(list(body.get("answers") or []))
                self._send(200, {"queued": len(sandbox.script_queue)})
            elif action == "reset":
                sandbox.reset()
                self._send(200, {"reset": True})
            else:
                self._send(404, _error(404, f"no control action {action}"))
        except (TypeError, ValueError) as exc:
            self._send(400, _error(400, str(exc)))

    def _send(self, status: int, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): normal here


class LlmSandboxServer(ThreadedSandbox):
    """The model sandbox on a real socket. ``port=0`` picks a free port; ``.base_url`` is what
    LLM_BASE_URL should be."""

    handler = _Handler
    thread_name = "llm-sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        super().__init__(host, port)
        self.sandbox = LlmSandbox(LlmSandboxConfig(**config))

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> LlmSandboxServer:
        self.sandbox.stopping.clear()
        return super().start()

    def stop(self) -> None:
        self.sandbox.stopping.set()  # release hung "timeout" answers
        super().stop()

    # Direct accessors, for tests in the same process.
    def reset(self) -> None:
        self.sandbox.reset()

    def configure(self, **changes: Any) -> LlmSandboxConfig:
        return self.sandbox.configure(**changes)

    def script(self, answers: list[dict[str, Any] | str]) -> None:
        self.sandbox.script(answers)

    @property
    def requests(self) -> list[LlmRequest]:
        with self.sandbox.lock:
            return list(self.sandbox.requests)
