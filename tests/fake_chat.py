"""A real HTTP server on loopback that answers like an OpenAI-compatible
`/v1/chat/completions` endpoint, with a queue of scripted replies (status codes, delays,
malformed bodies, replies without a rating) and a record of every request it received."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saesteer.concepts.judges.chat import BEGIN, END

PATH = "/v1/chat/completions"


def response_text(user: str) -> str:
    """The rated response inside a user message, as the judge delimits it."""
    return user.rsplit(BEGIN + "\n", 1)[-1].rsplit("\n" + END, 1)[0]


def count_oceans(user: str) -> str:
    """The default answer: one point per "ocean" in the response, at most 2."""
    n = min(2, response_text(user).lower().count("ocean"))
    return f"The text says ocean {n} times.\nRating: {n}"


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # raw bytes as sent; None: a completion holding `content`
    content: str | None = None  # None: the server's `answer` to the user message
    delay: float = 0.0
    headers: dict = field(default_factory=dict)


@dataclass
class Request:
    start: float  # time.monotonic() on arrival
    path: str
    headers: dict
    body: dict | None  # None when the body was not JSON


class FakeChat:
    def __init__(self, api_key: str | None = None, answer: Callable[[str], str] = count_oceans):
        self.api_key = api_key
        self.answer = answer  # user message -> reply content, for unscripted requests
        self.delay = 0.0  # for unscripted requests
        self.script: list[Reply] = []  # used first, one per request, in arrival order
        self.requests: list[Request] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        # A short poll interval, so shutting down after each test takes no half second.
        serve = lambda: self.server.serve_forever(poll_interval=0.02)  # noqa: E731
        self.thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> FakeChat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else Reply(delay=self.delay)

    def completion(self, content: str) -> bytes:
        message = {"role": "assistant", "content": content}
        return json.dumps(
            {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}
        ).encode()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with fake.lock:
                    fake.requests.append(
                        Request(time.monotonic(), self.path, dict(self.headers), body)
                    )
                if self.path != PATH:
                    return self._send(Reply(404, b'{"error": {"message": "no such path"}}'))
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(Reply(401, b'{"error": {"message": "bad api key"}}'))
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    reply = fake.next_reply()
                    time.sleep(reply.delay)
                    if reply.body is None:
                        content = reply.content
                        if content is None:
                            content = fake.answer(body["messages"][-1]["content"])
                        reply.body = fake.completion(content)
                    self._send(reply)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _send(self, reply: Reply):
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        return Handler
