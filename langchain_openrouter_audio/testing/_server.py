"""`OpenRouterTestServer`: a local HTTP server speaking OpenRouter's chat-completions protocol."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import select
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from . import _audio_api
from ._gateway import check_request, gateway_error
from ._replies import Reply, default_error
from ._request import RecordedRequest, parse_json
from ._speech import speech_pcm16
from ._wire import Rendering, new_generation_id

__all__ = ["OpenRouterTestServer"]

logger = logging.getLogger("langchain_openrouter_audio.testing")

# Marks a scripted reply that was already sent (an error or raw bytes).
_SENT: Any = object()

CHAT_COMPLETIONS_PATH = "/api/v1/chat/completions"
SPEECH_PATH = "/api/v1/audio/speech"
TRANSCRIPTIONS_PATH = "/api/v1/audio/transcriptions"
GENERATION_PATH = "/api/v1/generation"
MODELS_PATH = "/api/v1/models"
_ROUTES = {
    ("POST", CHAT_COMPLETIONS_PATH),
    ("POST", SPEECH_PATH),
    ("POST", TRANSCRIPTIONS_PATH),
    ("GET", GENERATION_PATH),
    ("GET", MODELS_PATH),
}
_POLL_INTERVAL_S = 0.05
# Largest request body read: far over any request the package sends (a 64 MiB clip as
# base64 is ~86 MiB), and a bound on what one connection, before auth, can make it hold.
_MAX_REQUEST_BYTES = 256 * 1024 * 1024
# Default `read_timeout_s`: the longest silence while a request (or the next one on a
# kept-alive connection) is read. Past it the connection is closed, so a client that sends
# half a request cannot hold a connection and its thread for good.
READ_TIMEOUT_S = 10.0
# The longest a single write of a reply may wait for a client that stopped reading. Pauses
# the server makes itself (`event_delay_s`, `stall_s`, `headers_delay_s`) are not socket
# waits and are never cut by it.
_WRITE_TIMEOUT_S = 60.0
# What a client is told when the server itself fails (OpenRouter masks 500-class messages
# too); the exception and its traceback go to the log.
_INTERNAL_ERROR = gateway_error(500, "Internal Server Error")
# Generation records kept for ``GET /generation`` (every chat, speech and transcription call
# leaves one); past it the oldest are forgotten, so a server left running stays bounded.
_MAX_GENERATIONS = 10_000


class _BodyTooLarge(Exception):
    """A request body over `_MAX_REQUEST_BYTES`."""


def _dumps(obj: Any) -> bytes:
    # Compact and raw UTF-8 like the real gateway, so multi-byte characters reach the wire.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _ChunkedWriter:
    """Writes HTTP/1.1 chunks, optionally re-cut into ``write_size`` pieces."""

    def __init__(self, wfile: BufferedIOBase, write_size: int | None) -> None:
        self._wfile = wfile
        self._write_size = write_size
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        if self._write_size is None:
            self._send(data)
            return
        self._pending += data
        while len(self._pending) >= self._write_size:
            self._send(bytes(self._pending[: self._write_size]))
            del self._pending[: self._write_size]

    def flush(self) -> None:
        if self._pending:
            self._send(bytes(self._pending))
            self._pending.clear()

    def finish(self) -> None:
        self.flush()
        self._wfile.write(b"0\r\n\r\n")
        self._wfile.flush()

    def _send(self, data: bytes) -> None:
        if data:
            self._wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self._wfile.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small writes must leave at once, or write_size/trickle tests would see them merged.
    disable_nagle_algorithm = True
    server_version = "OpenRouterTestServer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def _owner(self) -> OpenRouterTestServer:
        return cast(_HTTPServer, self.server).owner

    _responded = False

    def send_response(self, code: int, message: str | None = None) -> None:
        self._responded = True
        super().send_response(code, message)

    def handle_one_request(self) -> None:
        # Every wait for the client's bytes (the request line, headers, body, and the next
        # request on a kept-alive connection) is bounded: the base class closes the
        # connection on a timeout in the head, do_POST on one in the body.
        try:
            self.connection.settimeout(self._owner.read_timeout_s)
        except OSError:
            self.close_connection = True
            return
        super().handle_one_request()

    def do_POST(self) -> None:
        self._responded = False
        try:
            self._handle()
        except OSError:
            # The peer went away, stopped sending (a read timeout) or stop() shut the
            # socket: nothing left to answer.
            self.close_connection = True
        except Exception:
            # A bug in the server (or in a responder): the client gets a 500 that says
            # nothing of it, the log gets the traceback.
            self.close_connection = True
            logger.exception(
                "OpenRouterTestServer failed on %s %s", self.command, urlsplit(self.path).path
            )
            if not self._responded:
                with contextlib.suppress(OSError):
                    self._send_json(*_INTERNAL_ERROR)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    # -- request ----------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body.

        Raises:
            ValueError: the framing is malformed (a negative chunk size would read to EOF).
            _BodyTooLarge: the body is over `_MAX_REQUEST_BYTES`; it is not read.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size < 0:
                    raise ValueError(f"negative chunk size {size}")
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_REQUEST_BYTES:
                    raise _BodyTooLarge
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_REQUEST_BYTES:
            raise _BodyTooLarge
        return self.rfile.read(length) if length > 0 else b""

    def _recorded(self, body: bytes) -> RecordedRequest:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return RecordedRequest(self.command, self.path, headers, body, parse_json(body))

    def _auth_error(self, request: RecordedRequest) -> str | None:
        scheme, _, token = (request.authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "No auth credentials found"
        # The message never echoes the key: clients may log error bodies.
        if not hmac.compare_digest(token.strip().encode(), self._owner.api_key.encode()):
            return "User not found."
        return None

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            self._send_json(*gateway_error(413, "Request body too large"))
            return
        except ValueError:
            self.close_connection = True
            self._send_json(*gateway_error(400, "Malformed request body framing"))
            return
        # The request is in: from here on the socket waits only for a client that does not
        # read the reply.
        self.connection.settimeout(_WRITE_TIMEOUT_S)
        request = self._recorded(body)
        owner = self._owner
        owner._record(request)

        path = urlsplit(self.path).path
        if (self.command, path) not in _ROUTES:
            self._send_json(*gateway_error(404, "Not Found"))
            return
        auth_error = self._auth_error(request)
        if auth_error is not None:
            self._send_json(*gateway_error(401, auth_error))
            return
        if path == SPEECH_PATH:
            self._speech(request)
            return
        if path == TRANSCRIPTIONS_PATH:
            self._transcription(request)
            return
        if path == GENERATION_PATH:
            self._generation()
            return
        if path == MODELS_PATH:
            query = parse_qs(urlsplit(self.path).query)
            wanted = next(iter(query.get("output_modalities") or []), None)
            models = _audio_api.model_catalog(self._owner.extra_models)
            data = _audio_api.filter_models(models, wanted)
            self._send_json(200, {"data": data, "total_count": len(data), "links": {"next": None}})
            return
        speaking = {
            m["id"]
            for m in owner.extra_models
            if "audio" in m.get("architecture", {}).get("output_modalities", [])
        }
        rejection = check_request(request.json, speaking)
        if rejection is not None:
            self._send_json(*rejection)
            return
        try:
            reply = owner._next_reply(request)
        except Exception:
            logger.exception("OpenRouterTestServer: the responder raised")
            self._send_json(*_INTERNAL_ERROR)
            return
        if reply is None:
            message = "OpenRouterTestServer: no scripted reply left for this request"
            self._send_json(*gateway_error(400, message))
            return
        self._respond(reply, request)

    # -- dedicated audio endpoints ----------------------------------------------

    def _scripted(self, queue: deque[Reply]) -> Any:
        """The next queued reply for this endpoint, None, or `_SENT` if it was sent already
        (an error, raw bytes, a reset)."""
        reply = self._owner._pop(queue)
        if reply is None:
            return None
        if reply.reset_before_headers:
            self._reset()
            return _SENT
        if reply.headers_delay_s > 0 and not self._owner._sleep(reply.headers_delay_s):
            self._cut()
            return _SENT
        if reply.raw_body is not None:
            self._send_raw(reply)
        elif reply.status != 200 or reply.error is not None:
            error = reply.error if reply.error is not None else default_error(reply.status)
            self._send_json(reply.status, {"error": error}, reply.headers)
        else:
            return reply  # a success to render
        return _SENT

    def _speech(self, request: RecordedRequest) -> None:
        started = time.time()
        rejection = _audio_api.check_speech(request.json)
        if rejection is not None:
            self._send_json(*rejection)
            return
        body: dict[str, Any] = request.json
        rejection = _audio_api.speech_too_long(body, self._owner.speech_input_limit)
        if rejection is not None:
            self._send_json(*rejection)
            return
        reply = self._scripted(self._owner._speech_queue)
        if reply is _SENT:
            return
        fmt = body.get("response_format", "pcm")
        pcm = reply.pcm if reply is not None and reply.pcm else speech_pcm16(body["input"])
        audio = pcm
        if fmt == "mp3":
            is_mp3 = pcm[:3] == b"ID3" or pcm[:2] in (b"\xff\xfb", b"\xff\xf3")
            audio = pcm if is_mp3 else _audio_api.mp3_from_pcm(pcm)
        gen_id = _audio_api.new_audio_generation_id("tts")
        cost = reply.cost if reply is not None else _audio_api.speech_cost(body)
        self._owner._add_generation(gen_id, "tts", body["model"], cost, started)
        self.send_response(200)
        content_type = "audio/mpeg" if fmt == "mp3" else "audio/pcm;rate=24000;channels=1"
        self.send_header("Content-Type", content_type)
        self.send_header("X-Generation-Id", gen_id)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (reply.headers if reply is not None else {}).items():
            self.send_header(name, value)
        self.end_headers()
        step = (reply.audio_piece_bytes if reply is not None else None) or 4800
        delay = reply.event_delay_s if reply is not None else 0.0
        cut_after = reply.cut_after if reply is not None else None
        out = _ChunkedWriter(self.wfile, None)
        for sent, start in enumerate(range(0, len(audio), step)):
            if cut_after == sent:
                self._cut()
                return
            if sent and delay > 0 and not self._owner._sleep(delay):
                self._cut()
                return
            out.write(audio[start : start + step])
        if cut_after is not None and cut_after == -(-len(audio) // step):
            self._cut()
            return
        out.finish()

    def _transcription(self, request: RecordedRequest) -> None:
        started = time.time()
        rejection = _audio_api.check_transcription(request.json)
        if rejection is not None:
            self._send_json(*rejection)
            return
        body: dict[str, Any] = request.json
        reply = self._scripted(self._owner._transcription_queue)
        if reply is _SENT:
            return
        text: str | None = (reply.text or reply.transcript) if reply is not None else None
        if text is None:
            text = self._owner.transcript
        if text is None:
            text = _audio_api.clip_transcript(body["input_audio"]["data"]) or ""
        cost = reply.cost if reply is not None else None
        usage = reply.usage if reply is not None and reply.usage is not None else None
        if usage is None:
            usage = _audio_api.transcription_usage(body, text, cost)
        gen_id = _audio_api.new_audio_generation_id("stt")
        self._owner._add_generation(gen_id, "stt", body["model"], float(usage["cost"]), started)
        headers = {"X-Generation-Id": gen_id, **(reply.headers if reply is not None else {})}
        self._send_json(200, {"text": text, "usage": usage}, headers)

    def _generation(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        gen_id = (query.get("id") or [""])[0]
        if not gen_id:
            self._send_json(*_audio_api.zod_error((["id"], "invalid_type", "Required")))
            return
        record = self._owner._lookup_generation(gen_id)
        if record is None:
            self._send_json(*gateway_error(404, f"Generation {gen_id} not found"))
            return
        self._send_json(200, {"data": record})

    # -- response ---------------------------------------------------------------

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        payload = _dumps(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _respond(self, reply: Reply, request: RecordedRequest) -> None:
        if reply.reset_before_headers:
            self._reset()
            return
        if reply.headers_delay_s > 0 and not self._owner._sleep(reply.headers_delay_s):
            self._cut()
            return
        if reply.raw_body is not None:
            self._send_raw(reply)
            return
        if reply.status != 200 or reply.error is not None:
            error = reply.error if reply.error is not None else default_error(reply.status)
            self._send_json(reply.status, {"error": error}, reply.headers)
            return
        started = time.time()
        rendering = Rendering(reply, request.json, gen_id=new_generation_id(), created=int(started))
        if request.json.get("stream") is True and not reply.whole_completion:
            self._stream(rendering, started)
        else:
            headers = {"X-Generation-Id": rendering.gen_id, **reply.headers}
            self._send_json(200, rendering.completion_body(), headers)
            self._chat_generation(rendering, started, streamed=False)

    def _chat_generation(
        self,
        rendering: Rendering,
        started: float,
        *,
        streamed: bool = True,
        sent: int | None = None,
        total: int = 1,
        cancelled: bool = False,
    ) -> None:
        """Record a chat completion for ``GET /generation``, billed for what was sent: all of
        it, or ``sent`` of the ``total`` data events when the stream ended early."""
        cost, counts = rendering.billed(1.0 if sent is None else sent / max(total, 1))
        self._owner._add_generation(
            rendering.gen_id,
            "completions",
            rendering.model,
            cost,
            started,
            streamed=streamed,
            cancelled=cancelled,
            counts=counts,
        )

    def _send_raw(self, reply: Reply) -> None:
        """Send ``reply.raw_body`` verbatim: recorded streams and hostile responses."""
        pieces = (reply.raw_body,) if isinstance(reply.raw_body, bytes) else reply.raw_body
        assert pieces is not None
        chunked = reply.raw_cut or reply.write_size is not None or len(pieces) != 1
        self.send_response(reply.status)
        content_type = "text/event-stream" if reply.content_type is None else reply.content_type
        overridden = {name.lower() for name in reply.headers}
        if content_type and "content-type" not in overridden:
            self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(pieces[0])))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if not chunked:
            self.wfile.write(pieces[0])
            self.wfile.flush()
            return
        out = _ChunkedWriter(self.wfile, reply.write_size)
        for piece in pieces:
            out.write(piece)
            out.flush()
        if reply.raw_cut:
            self._cut()
            return
        out.finish()

    def _stream(self, rendering: Rendering, started: float) -> None:
        sent = [0, 0]  # [data events written, data events in the reply]
        try:
            self._stream_events(rendering, sent)
        except OSError:  # the client went away: it is billed for what was sent
            self._chat_generation(rendering, started, sent=sent[0], total=sent[1], cancelled=True)
            raise
        ended = sent[0] if sent[0] < sent[1] else None  # a scripted fault ended it early
        self._chat_generation(rendering, started, sent=ended, total=sent[1])

    def _stream_events(self, rendering: Rendering, sent_events: list[int]) -> None:
        """Write the stream; ``sent_events`` holds [events written, events in the reply]."""
        reply = rendering.reply
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if reply.wire in ("openrouter", "tidy"):
            self.send_header("X-Generation-Id", rendering.gen_id)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

        out = _ChunkedWriter(self.wfile, reply.write_size)
        eol = "\r\n" if reply.crlf else "\n"
        comment = f": OPENROUTER PROCESSING{eol}{eol}".encode()

        def event(payload: bytes) -> bytes:
            return b"data: " + payload + (eol * 2).encode()

        chunks = rendering.stream_chunks()
        sent_events[1] = len(chunks)
        comments = reply.effective_comments
        middle = len(chunks) // 2 if comments > 1 else -1
        out.write(comment * comments)
        for sent in range(len(chunks) + 1):
            # Faults fire once exactly `sent` data events are out, including after the last.
            if reply.stall_after == sent:
                out.flush()
                if not self._pause(reply.stall_s):
                    self._cut()
                    return
            if reply.error_after == sent:
                out.write(event(_dumps(rendering.error_chunk())))
                out.finish()
                return
            if reply.cut_after == sent:
                out.flush()
                self._cut()
                return
            if sent == len(chunks):
                break
            if sent == middle:
                out.write(comment)
            if sent and reply.event_delay_s > 0:
                out.flush()
                if not self._pause(reply.event_delay_s):
                    self._cut()
                    return
            out.write(event(_dumps(chunks[sent])))
            sent_events[0] = sent + 1
        if not reply.omit_done:
            out.write(event(b"[DONE]"))
        out.finish()

    def _pause(self, seconds: float) -> bool:
        """Pause a stream; False if the server is stopping. A client that hangs up meanwhile
        is noticed at once (OSError), as OpenRouter stops a stream whose client left."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self._owner._sleep(min(left, _POLL_INTERVAL_S)):
                return False
            if self._client_left():
                raise ConnectionAbortedError("the client closed the stream")
        return True

    def _client_left(self) -> bool:
        try:
            if not _readable(self.connection):
                return False
            return not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def _cut(self) -> None:
        """End the connection mid-message: a FIN without the terminating chunk."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no response at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket; the fd (and the RST) go only once both close.
        self.rfile.close()
        self.connection.close()


def _readable(sock: socket.socket) -> bool:
    """Whether `sock` has bytes (or its end) to read now. poll where there is one: select
    refuses socket numbers over 1023 (a process with many files open)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)  # Windows: no such limit
    return bool(readable)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], owner: OpenRouterTestServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.owner._stopping.is_set() or isinstance(sys.exc_info()[1], OSError):
            return
        logger.error("OpenRouterTestServer: a connection failed", exc_info=True)


class OpenRouterTestServer:
    """A real HTTP server on 127.0.0.1 that answers like OpenRouter from scripted replies.

    It enforces the gateway's checks for ``openai/gpt-audio*`` models (auth, audio
    output needs ``stream: true`` and ``pcm16``, ...), then answers each
    ``POST /api/v1/chat/completions`` with the next queued `Reply`, or with
    ``responder(request)`` once the queue is empty. Every request is recorded.

    It also serves OpenRouter's dedicated audio endpoints: ``POST /audio/speech``
    (raw PCM or MP3 bytes, chunked, with ``X-Generation-Id``; see `enqueue_speech`; an
    ``input`` over `speech_input_limit` characters, when set, gets the 400 a provider's
    input cap gives), ``POST /audio/transcriptions`` (JSON; see `enqueue_transcription`),
    ``GET /generation?id=`` (the cost of a chat completion, speech or transcription
    call; a chat stream the client closed early is billed for the share of its events
    sent, with ``cancelled: true``; the first `generation_misses` lookups of each id
    answer 404, as the real record comes late; the latest 10,000 records are kept),
    and ``GET /models`` (text models unless ``?output_modalities=`` asks for others; add
    entries to `extra_models`).

    It bounds every connection as a server on a network should: a client silent for
    `read_timeout_s` (10 s by default) while sending a request, or between requests on a
    kept-alive connection, is disconnected; pauses the server makes itself
    (``event_delay_s``, ``stall_s``, ``headers_delay_s``) are not cut by it. A failure
    inside the server, or a responder that raises, answers a bare 500 (``{"error":
    {"code": 500, "message": "Internal Server Error"}}``) and logs the exception on the
    ``langchain_openrouter_audio.testing`` logger.

    Examples:
        >>> import httpx
        >>> from langchain_openrouter_audio.testing import text_reply
        >>> with OpenRouterTestServer(api_key="k") as server:
        ...     server.enqueue(text_reply("Hi"))
        ...     r = httpx.post(f"{server.base_url}/chat/completions",
        ...                    headers={"Authorization": "Bearer k"},
        ...                    json={"model": "openai/gpt-audio", "modalities": ["text"],
        ...                          "messages": [{"role": "user", "content": [
        ...                              {"type": "input_audio",
        ...                               "input_audio": {"data": "AAAA", "format": "wav"}}]}]})
        >>> r.json()["choices"][0]["message"]["content"]
        'Hi'
    """

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        read_timeout_s: float = READ_TIMEOUT_S,
    ):
        if not (
            isinstance(read_timeout_s, int | float)
            and math.isfinite(read_timeout_s)
            and read_timeout_s > 0
        ):
            raise ValueError(f"read_timeout_s must be a positive number, got {read_timeout_s!r}")
        self.api_key = api_key
        self.read_timeout_s = float(read_timeout_s)
        self.responder: Callable[[RecordedRequest], Reply] | None = None
        self.requests: list[RecordedRequest] = []
        self._host = host
        self._port = port
        self._queue: deque[Reply] = deque()
        self._speech_queue: deque[Reply] = deque()
        self._transcription_queue: deque[Reply] = deque()
        self.transcript: str | None = None
        self.generation_misses = 0
        self.speech_input_limit: int | None = None
        self.extra_models: list[dict[str, Any]] = []
        self._generations: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> OpenRouterTestServer:
        """Bind a free port and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping = threading.Event()
        httpd = _HTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"OpenRouterTestServer:{httpd.server_port}",
            daemon=True,
        )
        self._httpd = httpd
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop promptly, cutting open connections and waking stalled responses."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> OpenRouterTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (only while started)."""
        if self._httpd is None:
            raise RuntimeError("OpenRouterTestServer is not started")
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v1``, to use as the client's base URL."""
        return f"http://{self._host}:{self.port}/api/v1"

    # -- script -----------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, answered first-in first-out, one per chat-completions POST."""
        self._enqueue_to(self._queue, replies)

    def _enqueue_to(self, queue: deque[Reply], replies: tuple[Reply, ...]) -> None:
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"expected a Reply, got {type(reply).__name__}")
        with self._lock:
            queue.extend(replies)

    def enqueue_speech(self, *replies: Reply) -> None:
        """Queue answers to ``POST /audio/speech``, first-in first-out.

        A success speaks ``pcm`` (raw PCM16 mono 24 kHz; MP3 bytes go out as they are)
        in ``audio_piece_bytes`` pieces, ``event_delay_s`` apart, billed ``cost``;
        ``cut_after=n`` closes the connection after n pieces. Errors as for chat
        (`error_reply`, `rate_limit_reply`, `raw_reply`). With nothing queued the
        server speaks the request's ``input`` with espeak-ng, priced per character.
        """
        self._enqueue_to(self._speech_queue, replies)

    def enqueue_transcription(self, *replies: Reply) -> None:
        """Queue answers to ``POST /audio/transcriptions``: ``text`` is the transcript.

        With nothing queued the transcript is `transcript` when set, else the shipped
        clip's own transcript when the audio is one of ``testing/assets``, else ``""``.
        """
        self._enqueue_to(self._transcription_queue, replies)

    def generation(self, gen_id: str) -> dict[str, Any] | None:
        """The record ``GET /generation?id=`` serves for ``gen_id`` (None: unknown)."""
        with self._lock:
            entry = self._generations.get(gen_id)
        return None if entry is None else dict(entry[0])

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget queued replies, the responder and recorded requests."""
        with self._lock:
            self._queue.clear()
            self._speech_queue.clear()
            self._transcription_queue.clear()
            self._generations.clear()
            self.responder = None
            self.transcript = None
            self.generation_misses = 0
            self.speech_input_limit = None
            self.requests.clear()

    # -- used by the handler ----------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self.responder
        if responder is None:
            return None
        reply = responder(request)
        if not isinstance(reply, Reply):
            raise TypeError(f"responder returned {type(reply).__name__}, not a Reply")
        return reply

    def _pop(self, queue: deque[Reply]) -> Reply | None:
        with self._lock:
            return queue.popleft() if queue else None

    def _add_generation(
        self, gen_id: str, api_type: str, model: str, cost: float, started: float, **extra: Any
    ) -> None:
        record = _audio_api.generation_record(
            gen_id, api_type=api_type, model=model, cost=cost, started=started, **extra
        )
        with self._lock:
            # [record, lookups still answered 404]: the real record shows up a moment late.
            self._generations[gen_id] = [record, self.generation_misses]
            while len(self._generations) > _MAX_GENERATIONS:
                del self._generations[next(iter(self._generations))]

    def _lookup_generation(self, gen_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._generations.get(gen_id)
            if entry is None:
                return None
            if entry[1] > 0:
                entry[1] -= 1
                return None
            return dict(entry[0])

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stop() comes first; False means the server is stopping."""
        return not self._stopping.wait(seconds)
