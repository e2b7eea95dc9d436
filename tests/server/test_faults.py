"""The test server's faults, auth modes, validation, control API, wire details, knobs
and subprocess mode. Real sockets on 127.0.0.1, no mocks."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmcli.testing import MockOpenAIServer, ServerConfig, start_server_process

from .helpers import KEY, body, sse_data, user


# -- faults ------------------------------------------------------------------
def test_status_faults_and_retry_after_forms(http: httpx.Client) -> None:
    cases = {"500": ("server_error", None), "503": ("server_error", "service_unavailable"),
             "429@1": ("requests", "rate_limit_exceeded"), "418": ("invalid_request_error", None)}
    for spec, (type_, code) in cases.items():
        response = http.post("/chat/completions", json=body(f"#fault:{spec}"))
        assert response.status_code == int(spec[:3])
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (type_, code, None)
        assert error["message"]
    retry = http.post("/chat/completions", json=body("#fault:429@1"))
    assert retry.headers["retry-after"] == "1"
    millis = http.post("/chat/completions", json=body("#fault:503@ms:250"))
    assert millis.headers["retry-after-ms"] == "250" and "retry-after" not in millis.headers
    dated = http.post("/chat/completions", json=body("#fault:429@date:30"))
    delay = parsedate_to_datetime(dated.headers["retry-after"]).timestamp() - time.time()
    assert 25 < delay <= 31


def test_count_suffix_counts_per_body_and_reset_clears(server: MockOpenAIServer,
                                                       http: httpx.Client) -> None:
    def status(prompt: str) -> int:
        return http.post("/chat/completions", json=body(prompt)).status_code

    assert [status("a #fault:503*2") for _ in range(3)] == [503, 503, 200]
    assert status("b #fault:503*2") == 503  # another body has its own counter
    assert status("a #fault:503*2") == 200
    server.reset()
    assert status("a #fault:503*2") == 503
    assert [status("c #fault:500") for _ in range(3)] == [500, 500, 500]  # no count: permanent


def test_fault_drop_hang_and_dropmid(server: MockOpenAIServer, http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        http.post("/chat/completions", json=body("#fault:drop"))
    with pytest.raises(httpx.ReadTimeout):
        http.post("/chat/completions", json=body("#fault:hang"), timeout=0.3)
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message"):
        http.post("/chat/completions", json=body("half a body #fault:dropmid"))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/chat/completions", json=body("a b c d #fault:dropmid",
                                                              stream=True)) as response:
            received.extend(line for line in response.iter_lines() if line)
    assert 1 < len(received) < 6 and "data: [DONE]" not in received
    assert server.stats()["statuses"] == {"drop": 1, "hang": 1, "200": 2}
    assert http.post("/chat/completions", json=body("still fine")).status_code == 200


def test_fault_malformed_bodies(http: httpx.Client) -> None:
    nonjson = http.post("/chat/completions", json=body("#fault:nonjson"))
    assert (nonjson.status_code, nonjson.text) == (200, "not json at all")
    assert nonjson.headers["content-type"] == "application/json"
    html = http.post("/chat/completions", json=body("#fault:html"))
    assert html.status_code == 502 and html.headers["content-type"] == "text/html"
    assert "<h1>502 Bad Gateway</h1>" in html.text and "nginx" in html.text
    plain = http.post("/chat/completions", json=body("#fault:plain"))
    assert (plain.status_code, plain.text) == (500, "Internal Server Error")
    assert plain.headers["content-type"].startswith("text/plain")
    detail = http.post("/chat/completions", json=body("#fault:detail"))
    assert detail.status_code == 422
    assert set(detail.json()["detail"][0]) == {"loc", "msg", "type"}


def test_stream_error_event_over_http(http: httpx.Client) -> None:
    with http.stream("POST", "/chat/completions",
                     json=body("x y z #fault:streamerror", stream=True)) as response:
        lines = sse_data(response)
    assert response.status_code == 200 and "[DONE]" not in lines
    assert json.loads(lines[-1])["error"]["type"] == "server_error"
    assert json.loads(lines[1])["choices"][0]["delta"]["content"] == "echo: "


# -- auth, query, validation -----------------------------------------------------------
def test_auth_modes() -> None:
    with MockOpenAIServer(api_key=KEY) as locked, httpx.Client(base_url=locked.base_url) as client:
        missing = client.get("/models")
        assert missing.status_code == 401 and "didn't provide an API key" in missing.text
        wrong = client.get("/models", headers={"Authorization": "Bearer sk-wrong-key-9999"})
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-key-9999" not in wrong.text and "sk-...9999" in wrong.text
        assert wrong.headers["x-request-id"].startswith("req_")
        assert client.get("/models", headers={"Authorization": f"Bearer {KEY}"}).is_success
    with MockOpenAIServer(auth_header="api-key") as azure, \
            httpx.Client(base_url=azure.base_url) as c:
        assert c.get("/models", headers={"api-key": "anything"}).is_success
        assert c.get("/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 401


def test_required_query() -> None:
    with MockOpenAIServer(required_query={"api-version": "2024-06-01"}) as strict, \
            httpx.Client(base_url=strict.base_url, headers={"Authorization": "Bearer k"}) as client:
        missing = client.get("/models")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "api-version"
        assert client.get("/models", params={"api-version": "2023-01-01"}).status_code == 400
        assert client.get("/models", params={"api-version": "2024-06-01"}).is_success


@pytest.mark.parametrize(("payload", "status", "param", "code"), [
    (b"{not json", 400, None, None),
    (b"[1, 2]", 400, None, None),
    ({"messages": user("x")}, 400, "model", "missing_required_parameter"),
    ({"model": "gpt-5", "messages": user("x")}, 404, None, "model_not_found"),
    ({"model": "test-model"}, 400, "messages", "missing_required_parameter"),
    ({"model": "test-model", "messages": []}, 400, "messages", "empty_array"),
    ({"model": "test-model", "messages": ["hi"]}, 400, "messages[0]", "invalid_type"),
    ({"model": "test-model", "messages": [{"role": "robot", "content": "x"}]},
     400, "messages[0].role", "invalid_value"),
    ({"model": "test-model", "messages": [{"role": "user", "content": 5}]},
     400, "messages[0].content", "invalid_type"),
    (body("x", temperature=2.5), 400, "temperature", "decimal_above_max_value"),
    (body("x", max_tokens=0), 400, "max_tokens", "integer_below_min_value"),
    (body("x", max_completion_tokens="5"), 400, "max_completion_tokens", "invalid_type"),
    (body("x", stream_options={"include_usage": True}), 400, "stream_options", "invalid_value"),
    (body("x #fault:teapot"), 400, "messages", None),
    (body("x #latency:soon"), 400, "messages", None),
])
def test_validation_errors(http: httpx.Client, payload: Any, status: int, param: str | None,
                           code: str | None) -> None:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = http.post("/chat/completions", content=content)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_unknown_route_and_method(http: httpx.Client) -> None:
    assert http.get("/embeddings").status_code == 404
    assert http.get("/chat/completions").status_code == 405
    assert http.post("/models", json={}).status_code == 405


# -- control API -------------------------------------------------------------------
def test_control_stats_and_reset(server: MockOpenAIServer, http: httpx.Client) -> None:
    http.post("/chat/completions", json=body("counted"))
    http.get("/models")
    http.get("/models/unknown")
    stats = httpx.get(server.url("/_control/stats")).json()
    assert stats["total_requests"] == 3
    assert stats["paths"] == {"/v1/chat/completions": 1, "/v1/models": 1, "/v1/models/unknown": 1}
    assert stats["statuses"] == {"200": 2, "404": 1}
    first = stats["requests"][0]
    assert (first["method"], first["path"], first["body"]["messages"]) == (
        "POST", "/v1/chat/completions", user("counted"))
    assert first["headers"]["authorization"] == "Bearer sk-...abcd"
    assert httpx.post(server.url("/_control/reset")).json() == {"ok": True}
    assert httpx.get(server.url("/_control/stats")).json()["total_requests"] == 0


def test_control_fault_queue_applies_in_order(server: MockOpenAIServer,
                                              http: httpx.Client) -> None:
    queued = httpx.post(server.url("/_control/faults"), json={"faults": [
        {"status": 429, "retry_after": 1, "count": 2}, {"kind": "drop", "count": 1}]})
    assert queued.json() == {"ok": True, "queued_faults": 3}
    first = http.post("/chat/completions", json=body("any prompt"))
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert http.post("/chat/completions", json=body("other prompt")).status_code == 429
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/chat/completions", json=body("third"))
    assert http.post("/chat/completions", json=body("fourth")).status_code == 200
    bad = httpx.post(server.url("/_control/faults"), json={"faults": [{"kind": "explode"}]})
    assert bad.status_code == 400 and "kind" in bad.json()["error"]["message"]
    server.queue_faults([{"status": 500}])
    assert http.post("/chat/completions", json=body("fifth")).status_code == 500


# -- the wire: keep-alive, pipelining, framing ---------------------------------------
def _raw_request(path: str, payload: bytes = b"", extra: str = "") -> bytes:
    method = "POST" if payload else "GET"
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n{extra}"
            f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


def _read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """Read ``count`` Content-Length framed responses; returns (head, body) pairs."""
    data, responses = b"", []
    while len(responses) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].lower()
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(data) >= head_end + 4 + length:
                responses.append((head, data[head_end + 4:head_end + 4 + length]))
                data = data[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection early"
        data += chunk
    return responses


def test_keep_alive_and_pipelining_on_one_connection(server: MockOpenAIServer) -> None:
    # The delayed middle request must not let the third overtake it.
    slow = json.dumps(body("piped #latency:30")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(_raw_request("/v1/models") + _raw_request("/v1/chat/completions", slow)
                     + _raw_request("/v1/models/test-model"))
        responses = _read_responses(sock, 3)
        sock.sendall(_raw_request("/v1/chat/completions", slow, "Connection: close\r\n"))
        (last_head, last_body), = _read_responses(sock, 1)
        assert sock.recv(10) == b""  # the server closed after Connection: close
    objects = [json.loads(reply).get("object") for _, reply in responses]
    assert objects == ["list", "chat.completion", "model"]
    assert all(head.startswith(b"http/1.1 200") for head, _ in responses)
    assert not any(b"connection: close" in head for head, _ in responses)
    assert b"connection: close" in last_head and b"echo: piped" in last_body


def test_http_10_gets_one_response_per_connection(server: MockOpenAIServer) -> None:
    raw = _raw_request("/v1/models").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        (head, reply), = _read_responses(sock, 1)
        assert sock.recv(10) == b""
    assert b"connection: close" in head and json.loads(reply)["object"] == "list"


def test_request_split_across_segments(server: MockOpenAIServer) -> None:
    raw = _raw_request("/v1/chat/completions", json.dumps(body("split up")).encode())
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for i in range(0, len(raw), 7):
            sock.sendall(raw[i:i + 7])
        (_, reply), = _read_responses(sock, 1)
    assert json.loads(reply)["choices"][0]["message"]["content"] == "echo: split up"


def test_chunked_request_body_is_refused(server: MockOpenAIServer) -> None:
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        (head, reply), = _read_responses(sock, 1)
    assert head.startswith(b"http/1.1 411") and b"connection: close" in head
    assert "Content-Length" in json.loads(reply)["error"]["message"]


# -- knobs ---------------------------------------------------------------------------
def test_latency_and_interval(http: httpx.Client) -> None:
    started = time.perf_counter()
    assert http.post("/chat/completions", json=body("slow #latency:150")).is_success
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    with http.stream("POST", "/chat/completions",
                     json=body("#chunks:3 #interval:40", stream=True)) as response:
        lines = sse_data(response)
    assert time.perf_counter() - started >= 0.04 * 5  # pauses between all 6 events
    assert lines[-1] == "[DONE]"


def test_server_wide_latency_and_ratelimit_headers() -> None:
    with MockOpenAIServer(latency_ms=100, ratelimit_headers=True, models=["only-model"]) as slow, \
            httpx.Client(base_url=slow.base_url, headers={"Authorization": "Bearer k"}) as client:
        started = time.perf_counter()
        first = client.post("/chat/completions", json={"model": "only-model",
                                                       "messages": user("a b")})
        assert time.perf_counter() - started >= 0.1
        second = client.get("/models")
    assert first.headers["x-ratelimit-limit-requests"] == "10000"
    assert int(first.headers["x-ratelimit-remaining-requests"]) == 9999
    assert int(second.headers["x-ratelimit-remaining-requests"]) == 9998
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 10_000_000 - 2 - 3
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert [m["id"] for m in second.json()["data"]] == ["only-model"]


def test_tls_with_self_signed_certificate(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with MockOpenAIServer(certfile=str(cert), keyfile=str(key)) as secure:
        assert secure.base_url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(secure.url("/v1/models"), verify=context,
                             headers={"Authorization": "Bearer k"})
        assert response.json()["object"] == "list"
        with pytest.raises(httpx.ConnectError):
            httpx.get(secure.url("/v1/models"))  # the system CAs do not trust it


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ServerConfig(keyfile="key.pem")
    with pytest.raises(TypeError):
        MockOpenAIServer(ServerConfig(), port=1)


# -- subprocess mode -------------------------------------------------------------------
def test_subprocess_prints_port_and_exits_on_sigterm() -> None:
    with start_server_process(["--port", "0", "--model", "m1", "--api-key", "k"]) as child:
        assert child.base_url == f"http://127.0.0.1:{child.port}/v1"
        response = httpx.get(child.url("/v1/models"), headers={"Authorization": "Bearer k"})
        assert [m["id"] for m in response.json()["data"]] == ["m1"]
        assert child.stop(timeout=5) == 0
    assert child.process.returncode == 0


def test_help_documents_every_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "llmcli.testing", "--help"],
                            capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    for flag in ("--host", "--port", "--model", "--api-key", "--auth-header", "--require-query",
                 "--latency-ms", "--stream-interval-ms", "--ratelimit-headers", "--certfile",
                 "--keyfile", "#fault:SPEC"):
        assert flag in result.stdout


def test_echo_key_puts_the_raw_key_everywhere_a_careless_server_would() -> None:
    wrong = "sk-wrong-0123456789abcdefgh"
    with MockOpenAIServer(api_key=KEY, echo_key=True) as srv, \
            httpx.Client(base_url=srv.base_url) as client:
        denied = client.post("/chat/completions", json=body("x"),
                             headers={"Authorization": f"Bearer {wrong}"})
        assert denied.status_code == 401 and denied.headers["x-request-id"] == wrong
        assert f"provided: {wrong}." in denied.json()["error"]["message"]
        assert denied.json()["error"]["param"] == wrong
        auth = {"Authorization": f"Bearer {KEY}"}
        ok = client.post("/chat/completions", json=body("x"), headers=auth)
        assert ok.status_code == 200 and ok.headers["x-request-id"] == KEY
        missing = client.post("/chat/completions", json={**body("x"), "model": "nope"},
                              headers=auth)
        error = missing.json()["error"]
        assert missing.status_code == 404 and KEY in error["message"] and error["param"] == KEY
        with client.stream("POST", "/chat/completions", headers=auth,
                           json=body("#fault:streamerror x", stream=True)) as streamed:
            events = sse_data(streamed)
        assert KEY in json.loads(events[-1])["error"]["message"]
        html = client.post("/chat/completions", json=body("#fault:html x"), headers=auth)
        assert html.status_code == 502 and "<html>" in html.text   # not JSON: left alone
    with MockOpenAIServer(api_key=KEY) as plain, httpx.Client(base_url=plain.base_url) as client:
        denied = client.post("/chat/completions", json=body("x"),
                             headers={"Authorization": f"Bearer {wrong}"})
        assert wrong not in denied.text and denied.headers["x-request-id"].startswith("req_")


def test_echo_key_flag() -> None:
    from llmcli.testing.__main__ import build_parser, config_from_args

    assert config_from_args(build_parser().parse_args(["--echo-key"])).echo_key is True
    assert config_from_args(build_parser().parse_args([])).echo_key is False
