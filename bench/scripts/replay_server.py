"""Serve a recorded event stream the way real API servers send one: each SSE event in
its own HTTP chunk, as fast as the socket takes them.

    python bench/scripts/replay_server.py RECORDED_SSE_BODY

The project's test server, when no pause is asked for, packs many events into one HTTP
chunk; OpenAI, vLLM and the like send one chunk per event, and every HTTP client then
pays its chunk decoder once per event. This replays the same bytes that way, so the
benchmark shows both. Prints ``listening on http://127.0.0.1:PORT/v1`` when ready;
answers every request (any path) with the recording; stop it with SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")


def chunked(body: bytes) -> bytes:
    """The body in chunked transfer encoding, one chunk per event."""
    events = [event + b"\n\n" for event in body.split(b"\n\n") if event.strip()]
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def read_request(conn: socket.socket) -> None:
    """Read the head and the Content-Length body of one request."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        more = conn.recv(65536)
        if not more:
            return
        body += more


def serve(conn: socket.socket, payload: bytes) -> None:
    with conn:
        try:
            read_request(conn)
            conn.sendall(HEAD + payload)
        except OSError:
            pass   # the client went away


def main(path: str) -> None:
    payload = chunked(open(path, "rb").read())
    listener = socket.create_server(("127.0.0.1", 0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://127.0.0.1:{listener.getsockname()[1]}/v1", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, payload), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1])
