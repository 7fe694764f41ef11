"""A minimal OpenAI-compatible server for throughput benchmarks: fixed latency, honours `n`, little CPU.

Plain asyncio protocol (no framework): it parses just enough HTTP/1.1 (keep-alive, Content-Length bodies),
answers every completion request after `--latency` seconds with `n` fixed choices, and keeps counters that
the benchmark reads and resets:

    GET  /_bench/stats   {"requests", "samples", "errors", "first_arrival", "last_response", "span_s"}
    POST /_bench/reset   zero the counters

Usage: python bench/fast_server.py --port 0 --port-file F --latency 0.05 [--model M] [--record FILE] [--capacity C]
(`--record` appends "path<TAB>body" per completion request, to replay the exact bodies elsewhere; `--capacity`
serves at most C completion requests at once, the others queue in arrival order, as a replica with a fixed batch).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import signal
import time
from pathlib import Path
from typing import BinaryIO

import orjson

COMPLETION_PATHS = (b"/v1/chat/completions", b"/v1/completions")


class Stats:
    """Counters over completion requests since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = 0
        self.samples = 0
        self.errors = 0
        self.first_arrival: float | None = None
        self.last_response: float | None = None

    def as_json(self) -> bytes:
        """The counters as JSON, with the span from the first arrival to the last response."""
        span = None
        if self.first_arrival is not None and self.last_response is not None:
            span = self.last_response - self.first_arrival
        return orjson.dumps(
            {
                "requests": self.requests,
                "samples": self.samples,
                "errors": self.errors,
                "first_arrival": self.first_arrival,
                "last_response": self.last_response,
                "span_s": span,
            }
        )


class App:
    """What the server answers; shared by all connections."""

    def __init__(
        self, latency: float, models: list[str], record: BinaryIO | None, capacity: int | None = None
    ) -> None:
        self.latency = latency
        self.capacity = capacity
        self.serving = 0
        """Completion requests in their latency wait (at most `capacity`)."""
        self.queued: collections.deque[tuple[HttpProtocol, bytes, int, bool]] = collections.deque()
        self.models = models
        self.record = record
        self.stats = Stats()
        self._cache: dict[tuple[bool, int, str], bytes] = {}

    def completion(self, chat: bool, n: int, model: str) -> bytes:
        """The (cached) 200 body for `n` choices."""
        key = (chat, n, model)
        body = self._cache.get(key)
        if body is None:
            text = "Let me work it out step by step. The final answer is \\boxed{42}."
            if chat:
                choices = [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                    for i in range(n)
                ]
            else:
                choices = [
                    {"index": i, "text": text, "logprobs": None, "finish_reason": "stop"} for i in range(n)
                ]
            body = orjson.dumps(
                {
                    "id": "chatcmpl-bench" if chat else "cmpl-bench",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": choices,
                    "usage": {
                        "prompt_tokens": 100,
                        "completion_tokens": 14 * n,
                        "total_tokens": 100 + 14 * n,
                    },
                }
            )
            self._cache[key] = body
        return body


def _response(status: bytes, body: bytes, close: bool = False) -> bytes:
    head = (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + (b"\r\nconnection: close" if close else b"")
        + b"\r\n\r\n"
    )
    return head + body


class HttpProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            lines = head.split(b"\r\n")
            try:
                method, target, _ = lines[0].split(b" ", 2)
            except ValueError:
                self._send(_response(b"400 Bad Request", b"{}", close=True), close=True)
                return
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self._handle(method, target.split(b"?", 1)[0], body, close)

    def _send(self, payload: bytes, close: bool = False) -> None:
        if self.transport is None:
            return
        self.transport.write(payload)
        if close:
            self.transport.close()

    def _handle(self, method: bytes, path: bytes, body: bytes, close: bool) -> None:
        app = self.app
        if path in COMPLETION_PATHS and method == b"POST":
            stats = app.stats
            now = time.monotonic()
            if stats.first_arrival is None:
                stats.first_arrival = now
            stats.requests += 1
            if app.record is not None:
                app.record.write(path + b"\t" + body + b"\n")
            try:
                request = orjson.loads(body)
                n = int(request.get("n") or 1)
                model = str(request.get("model") or app.models[0])
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                stats.errors += 1
                self._send(
                    _response(b"400 Bad Request", b'{"error":{"message":"bad body","code":400}}'), close
                )
                return
            if model not in app.models:
                stats.errors += 1
                message = orjson.dumps(
                    {
                        "error": {
                            "message": f"The model `{model}` does not exist.",
                            "type": "NotFoundError",
                            "param": "model",
                            "code": 404,
                        }
                    }
                )
                self._send(_response(b"404 Not Found", message), close)
                return
            payload = _response(b"200 OK", app.completion(path == COMPLETION_PATHS[0], n, model), close)
            if app.capacity is not None and app.serving >= app.capacity:
                app.queued.append((self, payload, n, close))  # waits for a free place (a semaphore, FIFO)
            else:
                app.serving += 1
                self.loop.call_later(app.latency, self._answer, payload, n, close)
        elif path == b"/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "bench"} for m in app.models]
            self._send(_response(b"200 OK", orjson.dumps({"object": "list", "data": data})), close)
        elif path == b"/_bench/stats":
            self._send(_response(b"200 OK", app.stats.as_json()), close)
        elif path == b"/_bench/reset" and method == b"POST":
            app.stats.reset()
            self._send(_response(b"200 OK", b"{}"), close)
        elif path == b"/health":
            self._send(_response(b"200 OK", b"{}"), close)
        else:
            self._send(_response(b"404 Not Found", b'{"error":{"message":"not found","code":404}}'), close)

    def _answer(self, payload: bytes, n: int, close: bool) -> None:
        app = self.app
        stats = app.stats
        stats.samples += n
        stats.last_response = time.monotonic()
        self._send(payload, close)
        if app.queued:  # its place goes to the oldest waiting request
            protocol, queued_payload, queued_n, queued_close = app.queued.popleft()
            self.loop.call_later(app.latency, protocol._answer, queued_payload, queued_n, queued_close)
        else:
            app.serving -= 1


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT."""
    record = args.record.open("ab") if args.record else None
    app = App(args.latency, args.model or ["bench-model"], record, args.capacity)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(app), args.host, args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(port))
        tmp.replace(args.port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    if record is not None:
        with contextlib.suppress(OSError):
            record.close()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, default=None)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each completion answer")
    parser.add_argument("--model", action="append", default=None, help="model served (repeatable)")
    parser.add_argument(
        "--record", type=Path, default=None, help="append 'path<TAB>body' per completion request"
    )
    parser.add_argument(
        "--capacity", type=int, default=None, help="most completion requests served at once (default: unlimited)"
    )
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
