"""A tiny real HTTP server on 127.0.0.1 that answers what a test tells it to, byte for
byte: for the hostile answers (deep JSON, lying charsets, escape sequences, huge
events) that a well-behaved test server would never send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Answer = tuple[int, dict[str, str], bytes]


class CannedServer:
    """``with CannedServer(answer) as url:``; ``answer(body)`` gets each request's JSON."""

    def __init__(self, answer: Callable[[Any], Answer]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:    # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(length)
                status, headers, body = outer.answer(json.loads(data) if data else None)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.answer = answer
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> str:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content: str, model: str = "m") -> bytes:
    """A well-formed chat completion body."""
    return json.dumps({"id": "c1", "object": "chat.completion", "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant",
                                                            "content": content},
                                    "finish_reason": "stop"}]}).encode()


JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}
