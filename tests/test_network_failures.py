"""Network failures end fast, in one precise line (issue 8, point 3): every case here
ends within 2 s, through real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import trustme

from llmcli.testing import MockOpenAIServer

from .conftest import API_KEY, run_cli

LIMIT = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[MockOpenAIServer]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(folder / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    with MockOpenAIServer(api_key=API_KEY, certfile=str(folder / "cert.pem")) as srv:
        srv.ca_file = str(folder / "ca.pem")   # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def eager_plain_server() -> Iterator[int]:
    """A plain-HTTP server that answers 400 at once to anything (as many do)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def timed(*args: str, env: dict[str, str]) -> tuple[float, object]:
    started = time.monotonic()
    done = run_cli(*args, env=env)
    return time.monotonic() - started, done


def one_line(done) -> str:
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connection_refused_on_loopback_is_not_retried(api_env, host):
    url = f"http://{host}:{free_port()}/v1"
    elapsed, done = timed("chat", "--base-url", url, "hi", env=api_env)
    assert done.returncode == 6
    line = one_line(done)
    assert f"nothing is listening at {url}" in line
    assert elapsed < LIMIT


def test_https_to_a_plain_http_server_that_waits_is_named(api_env, server):
    url = server.base_url.replace("http://", "https://")
    elapsed, done = timed("chat", "--base-url", url, "hi", env=api_env)
    assert done.returncode == 6
    assert "speaks plain HTTP, not TLS: use http://" in one_line(done)
    assert elapsed < LIMIT


def test_https_to_a_plain_http_server_that_answers_is_named(api_env, eager_plain_server):
    url = f"https://127.0.0.1:{eager_plain_server}/v1"
    elapsed, done = timed("chat", "--base-url", url, "hi", env=api_env)
    assert done.returncode == 6
    assert "speaks plain HTTP, not TLS" in one_line(done)
    assert elapsed < LIMIT


def test_http_to_a_tls_server_is_named(api_env, tls_server):
    url = tls_server.base_url.replace("https://", "http://")
    elapsed, done = timed("chat", "--base-url", url, "hi", env=api_env)
    assert done.returncode == 6
    assert "speaks TLS (HTTPS), not plain HTTP: use https://" in one_line(done)
    assert elapsed < LIMIT


def test_a_404_without_v1_in_the_base_url_hints_at_it(api_env, server):
    url = server.base_url.removesuffix("/v1")
    elapsed, done = timed("chat", "--base-url", url, "hi", env=api_env)
    assert done.returncode == 5
    assert f"did you mean --base-url {url}/v1?" in one_line(done)
    assert elapsed < LIMIT


def test_a_404_with_v1_has_no_such_hint(cli):
    done = cli("chat", "-m", "no-such-model", "hi")
    assert done.returncode == 5 and "/v1" not in done.stderr


def test_a_retry_after_past_the_cap_says_so_without_verbose(cli):
    started = time.monotonic()
    done = cli("chat", "hi #fault:429@600")
    assert done.returncode == 5
    line = one_line(done)
    assert "asked to wait 600s, longer than the 60s llmcli waits at most" in line
    assert time.monotonic() - started < LIMIT


def test_batch_stops_at_a_refused_loopback_connection(api_env, tmp_path: Path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"p{n}\n" for n in range(100)))
    url = f"http://127.0.0.1:{free_port()}/v1"
    elapsed, done = timed("batch", str(source), "-o", str(tmp_path / "o.jsonl"), "-c", "2",
                          "--base-url", url, env=api_env)
    assert done.returncode == 6
    assert done.stderr.splitlines()[-1].endswith(
        f"nothing is listening at {url} (is the server running, on that port?)")
    assert "--resume" in done.stderr
    assert elapsed < LIMIT + 1


def test_batch_names_https_to_a_plain_http_server_within_a_second_or_so(api_env, server,
                                                                        tmp_path: Path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"p{n}\n" for n in range(50)))
    url = server.base_url.replace("http://", "https://")
    elapsed, done = timed("batch", str(source), "-o", str(tmp_path / "o.jsonl"),
                          "--base-url", url, env=api_env)
    assert done.returncode == 6
    assert done.stderr.splitlines()[-1].endswith("speaks plain HTTP, not TLS: use http:// "
                                                 "in the base URL")
    assert elapsed < LIMIT + 1


@pytest.mark.parametrize("command", ["chat", "batch"])
def test_a_slow_tls_server_is_not_taken_for_plain_http(api_env, tls_server, tmp_path, command):
    # the answer takes longer than the probe's trigger: the probe must find TLS
    env = dict(api_env, OPENAI_BASE_URL=tls_server.base_url, LLMCLI_CA_BUNDLE=tls_server.ca_file)
    if command == "chat":
        done = run_cli("chat", "#latency:1200 hi", env=env)
    else:
        source = tmp_path / "in.txt"
        source.write_text("#latency:1200 a\n#latency:1200 b\n")
        done = run_cli("batch", str(source), env=env)
    assert done.returncode == 0, done.stderr
    assert "echo:" in done.stdout
