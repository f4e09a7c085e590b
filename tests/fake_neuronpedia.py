"""A real HTTP server on loopback that answers like Neuronpedia's feature endpoint, with
scripted failures (status codes, delays, malformed bodies) per feature."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL_ID = "tiny-model"
SOURCE = "{layer}-res-test"


RECORDED = (
    Path(__file__).parent / "data" / "neuronpedia" / "gemma-2-2b_20-gemmascope-res-16k_8837.json"
)


def feature_json(index: int, n_examples: int = 12, layer: int = 3) -> dict:
    """A feature as the API returns it, every field of the recorded response
    (`RECORDED`) kept, with the tiny model's words: example j peaks on word
    w{index + j % 3}."""
    recorded = json.loads(RECORDED.read_text())
    template = recorded["activations"][1]  # a top-activation record (binContains -1)
    activations = []
    for j in range(n_examples):
        tokens = [f"w{index + j + k}" for k in range(5)]
        values = [0.0, 0.5, 3.0 - 0.1 * j, 0.2, 0.0]
        tokens[2] = f"w{index + j % 3}"
        activations.append(
            template
            | {
                "id": f"act-{index}-{j}",
                "tokens": tokens,
                "values": values,
                "index": str(index),
                "layer": SOURCE.format(layer=layer),
                "modelId": MODEL_ID,
                "maxValue": max(values),
                "maxValueTokenIndex": 2,
                "minValue": min(values),
                "binMax": 3.0,
            }
        )
    return recorded | {
        "modelId": MODEL_ID,
        "layer": SOURCE.format(layer=layer),
        "index": str(index),
        "activations": activations,
        "explanations": [],
    }


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: the feature's JSON
    delay: float = 0.0
    headers: dict = field(default_factory=dict)


class FakeNeuronpedia:
    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.script: dict[int, list[Reply]] = {}
        self.requests: Counter = Counter()
        self.keys_seen: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeNeuronpedia:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_reply(self, index: int) -> Reply:
        with self.lock:
            self.requests[index] += 1
            queue = self.script.get(index, [])
            return queue.pop(0) if len(queue) > 1 else (queue[0] if queue else Reply())

    def _handler(self):
        fake = self
        path = re.compile(rf"^/api/feature/{MODEL_ID}/(\d+)-res-test/(\d+)$")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                match = path.match(self.path)
                if not match:
                    return self._send(Reply(404, b'{"message": "not found"}'))
                fake.keys_seen.append(self.headers.get("X-Api-Key"))
                if fake.api_key and self.headers.get("X-Api-Key") != fake.api_key:
                    return self._send(Reply(401, b'{"message": "unauthorized"}'))
                index = int(match.group(2))
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    reply = fake.next_reply(index)
                    time.sleep(reply.delay)
                    body = reply.body
                    self._send(
                        reply,
                        json.dumps(feature_json(index, layer=int(match.group(1)))).encode()
                        if body is None
                        else body,
                    )
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _send(self, reply: Reply, body: bytes | None = None):
                body = reply.body if body is None else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        return Handler
