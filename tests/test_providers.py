"""Provider profiles: the `config init` examples, Azure-style auth and query, extra
headers and body fields, a CA bundle against a local TLS server, and proxies."""

from __future__ import annotations

import http.client
import http.server
import re
import threading
import urllib.parse
from pathlib import Path
from typing import Iterator

import pytest
import trustme   # the test extra: a throwaway CA; never skipped, a missing one fails

from llmcli.config import load_settings
from llmcli.config.template import TEMPLATE
from llmcli.core.errors import ConfigError
from llmcli.core.options import ClientOptions
from llmcli.testing import MockOpenAIServer

from .conftest import API_KEY, run_cli

BASE_URLS = {
    "local": "http://localhost:11434/v1",
    "openai": "https://api.openai.com/v1",
    "azure": "https://YOUR-RESOURCE.openai.azure.com/openai/deployments/YOUR-DEPLOYMENT",
    "vllm": "http://localhost:8000/v1",
    "llamacpp": "http://localhost:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com",
    "mistral": "https://api.mistral.ai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    # native dialects: the base_url is the dialect's default (api: in the profile)
    "anthropic": "https://api.anthropic.com/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta",
    "responses": "https://api.openai.com/v1",
    "corp": "https://llm.internal.example.com/v1",
}


def uncommented(template: str, *, optional: bool = False) -> str:
    """The template with every example profile block uncommented (and, with
    ``optional``, the optional keys inside them too)."""
    lines = []
    for line in template.splitlines():
        if re.match(r"^  # [a-z]+:$", line) or line.startswith("  #   "):
            line = "  " + line[4:]
            if optional and line.startswith("    # "):
                line = "    " + line[6:]
        lines.append(line)
    return "\n".join(lines) + "\n"


# -- the config init template -----------------------------------------------------------

@pytest.mark.parametrize("optional", [False, True])
def test_every_example_profile_loads_with_its_base_url(tmp_path, optional):
    path = tmp_path / "config.yaml"
    path.write_text(uncommented(TEMPLATE, optional=optional))
    env = {"OPENAI_API_KEY": "sk-x"}
    assert load_settings(config=str(path), environ=env).profiles == sorted(BASE_URLS)
    for name, url in BASE_URLS.items():
        settings = load_settings(config=str(path), profile=name, environ=env)
        assert settings["base_url"] == url, name
        assert settings["model"]


def test_the_azure_and_openrouter_examples_say_what_those_services_need(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(uncommented(TEMPLATE, optional=True))
    azure = load_settings(config=str(path), profile="azure", environ={}).client_options(
        resolve_key=False)
    assert (azure.auth_header, azure.auth_scheme) == ("api-key", "")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", azure.query["api-version"])
    router = load_settings(config=str(path), profile="openrouter", environ={})
    assert set(router["headers"]) == {"HTTP-Referer", "X-Title"}


def test_config_init_writes_the_examples(cli, clean_env):
    assert cli("config", "init").returncode == 0
    text = (clean_env / "config.yaml").read_text()
    for name in BASE_URLS:
        assert f"  # {name}:" in text or f"  {name}:" in text


# -- Azure OpenAI style: api-key header, api-version query --------------------------------

@pytest.fixture(scope="module")
def azure_server() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(api_key=API_KEY, auth_header="api-key",
                          required_query={"api-version": "2024-06-01"}) as srv:
        yield srv


def azure_config(tmp_path: Path, server: MockOpenAIServer, **overrides: str) -> Path:
    keys = {"base_url": server.url("/openai/deployments/test-model"),
            "api_key_env": "AZURE_OPENAI_API_KEY", "auth_header": "api-key",
            "auth_scheme": '""', "query": '{api-version: "2024-06-01"}',
            "model": "test-model", **overrides}
    path = tmp_path / "azure.yaml"
    path.write_text("profiles:\n  azure:\n" + "".join(
        f"    {k}: {v}\n" for k, v in keys.items() if v is not None))
    return path


@pytest.mark.parametrize("command", ["chat", "stream"])
def test_azure_style_auth_header_and_query(azure_server, api_env, tmp_path, command):
    env = dict(api_env, AZURE_OPENAI_API_KEY=API_KEY)
    cfg = azure_config(tmp_path, azure_server)
    done = run_cli("--config", str(cfg), command, "-p", "azure", "hello azure", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "echo: hello azure\n"
    request = azure_server.stats()["requests"][-1]
    assert request["path"] == "/openai/deployments/test-model/chat/completions"
    assert request["query"] == {"api-version": "2024-06-01"}
    assert "api-key" in request["headers"] and "authorization" not in request["headers"]


def test_azure_server_refuses_what_the_profile_fixes(azure_server, api_env, tmp_path):
    # Without the profile's header or query the same request fails: the profile is what
    # made the requests above pass.
    env = dict(api_env, AZURE_OPENAI_API_KEY=API_KEY)
    bearer = azure_config(tmp_path, azure_server, auth_header=None, auth_scheme=None)
    assert run_cli("--config", str(bearer), "chat", "-p", "azure", "x", env=env).returncode == 4
    no_query = azure_config(tmp_path, azure_server, query=None)
    assert run_cli("--config", str(no_query), "chat", "-p", "azure", "--retries", "0", "x",
                   env=env).returncode == 5


def test_profile_headers_and_params_reach_the_server(server, api_env, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profiles:\n  router:\n    base_url: {server.base_url}\n"
                   f"    api_key: {API_KEY}\n    model: test-model\n"
                   "    headers: {HTTP-Referer: https://example.com, X-Title: my-script}\n"
                   "    params: {seed: 7, top_p: 0.5}\n")
    done = run_cli("--config", str(cfg), "chat", "-p", "router", "--param", "seed=8", "hi",
                   env=api_env)
    assert done.returncode == 0, done.stderr
    request = server.stats()["requests"][-1]
    assert request["headers"]["x-title"] == "my-script"
    assert request["headers"]["http-referer"] == "https://example.com"
    assert request["body"]["seed"] == 8 and request["body"]["top_p"] == 0.5  # flag wins


# -- TLS: a CA bundle against a local HTTPS test server ------------------------------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[tuple[MockOpenAIServer, Path]]:
    """An HTTPS test server whose certificate a throwaway CA signed, and that CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    where = tmp_path_factory.mktemp("tls")
    ca_pem, cert_pem = where / "ca.pem", where / "server.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    with MockOpenAIServer(api_key=API_KEY, certfile=str(cert_pem)) as srv:
        yield srv, ca_pem


def tls_env(api_env: dict[str, str], server: MockOpenAIServer, **extra: str) -> dict[str, str]:
    return dict(api_env, OPENAI_BASE_URL=server.base_url, **extra)


def test_ca_bundle_from_a_profile_verifies_the_server(tls, api_env, tmp_path):
    server, ca_pem = tls
    assert server.base_url.startswith("https://")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profiles:\n  corp:\n    base_url: {server.base_url}\n"
                   f"    api_key_env: OPENAI_API_KEY\n    ca_bundle: {ca_pem}\n")
    done = run_cli("--config", str(cfg), "chat", "-p", "corp", "over tls", env=api_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "echo: over tls\n"
    env = tls_env(api_env, server, LLMCLI_CA_BUNDLE=str(ca_pem))
    assert run_cli("stream", "also streams", env=env).stdout == "echo: also streams\n"


def test_without_the_bundle_the_same_request_fails_in_one_line_exit_6(tls, api_env):
    server, _ = tls
    done = run_cli("chat", "over tls", env=tls_env(api_env, server))
    assert done.returncode == 6
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmcli: error: ")
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0] and "ca_bundle" in lines[0]
    assert done.stdout == ""
    verbose = run_cli("-v", "chat", "over tls", env=tls_env(api_env, server))
    assert "retry" not in verbose.stderr   # a failed certificate check is never retried


def test_a_missing_bundle_is_a_config_error_exit_3(tls, api_env, tmp_path):
    server, _ = tls
    env = tls_env(api_env, server, LLMCLI_CA_BUNDLE=str(tmp_path / "nope.pem"))
    done = run_cli("chat", "x", env=env)
    assert done.returncode == 3 and "CA bundle" in done.stderr


def test_system_trust_uses_truststore_and_says_when_it_is_missing(monkeypatch):
    import ssl
    import sys

    from llmcli.core.client import verify_setting

    context = verify_setting(ClientOptions(system_trust=True))
    assert isinstance(context, ssl.SSLContext)
    assert type(context).__module__.startswith("truststore")
    monkeypatch.setitem(sys.modules, "truststore", None)     # as if not installed
    with pytest.raises(ConfigError, match="truststore"):
        verify_setting(ClientOptions(system_trust=True))


# -- proxies: the profile's `proxy`, and the standard environment variables -----------------

class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy for plain http, enough for one JSON request at a time."""

    seen: list[str] = []

    def do_POST(self) -> None:   # noqa: N802 (http.server's naming)
        self.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "host")}
        upstream.request("POST", target.path + (f"?{target.query}" if target.query else ""),
                         body, headers)
        reply = upstream.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        self.send_header("content-type", reply.getheader("content-type", "application/json"))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    _Proxy.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Proxy.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_profile_proxy_and_the_standard_env_vars_are_used(proxy, server, api_env, tmp_path):
    url, seen = proxy
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"profiles:\n  p:\n    base_url: {server.base_url}\n    api_key: {API_KEY}\n"
                   f"    proxy: {url}\n")
    done = run_cli("--config", str(cfg), "chat", "-p", "p", "via profile", env=api_env)
    assert done.returncode == 0 and done.stdout == "echo: via profile\n", done.stderr
    env = dict(api_env, HTTP_PROXY=url, NO_PROXY="")
    done = run_cli("chat", "via env", env=env)
    assert done.returncode == 0 and done.stdout == "echo: via env\n", done.stderr
    assert seen == [server.url("/v1/chat/completions")] * 2
    assert run_cli("chat", "direct", env=api_env).returncode == 0   # NO_PROXY: not proxied
    assert len(seen) == 2
