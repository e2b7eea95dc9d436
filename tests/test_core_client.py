"""Request building, response parsing and secret hygiene of the clients (respx answers),
and the structural rule that the core never imports the terminal layer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
import respx

from llmcli import __version__
from llmcli.core.aclient import AsyncClient
from llmcli.core.chat import build_chat_body, messages_for
from llmcli.core.client import Client
from llmcli.core.errors import (APIConnectionError, APIError, AuthenticationError, ConfigError,
                                InvalidResponseError)
from llmcli.core.options import ClientOptions, mask_key, redact
from llmcli.core.retry import RetryPolicy

KEY = "sk-proj-SeCrEt0123456789abcdefWXYZ"
BASE = "https://api.test/v1"
NO_RETRY = RetryPolicy(max_retries=0)
REPLY = {"id": "chatcmpl-9", "model": "gpt-x", "object": "chat.completion",
         "choices": [{"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": "Hi there"}}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
BODY = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}


def opts(**kwargs: Any) -> ClientOptions:
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry", NO_RETRY)
    return ClientOptions(**kwargs)


def sync_chat(options: ClientOptions, body: dict[str, Any] = BODY) -> Any:
    with Client(options, sleep=lambda _: None) as client:
        return client.chat(body)


def async_chat(options: ClientOptions, body: dict[str, Any] = BODY) -> Any:
    async def no_sleep(_: float) -> None:
        return None

    async def main() -> Any:
        async with AsyncClient(options, backend="httpx", sleep=no_sleep) as client:
            return await client.chat(body)

    return asyncio.run(main())


CHAT = pytest.mark.parametrize("chat", [sync_chat, async_chat], ids=["sync", "async"])


def caught(fn: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as info:
        fn(*args)
    return info.value


# --- request building ------------------------------------------------------------------

@CHAT
@pytest.mark.parametrize("base, url", [
    ("https://api.test/v1", "https://api.test/v1/chat/completions"),
    ("https://api.test/v1/", "https://api.test/v1/chat/completions"),
    ("https://api.test/v1//", "https://api.test/v1/chat/completions"),
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434/chat/completions"),
    ("http://127.0.0.1:8000/openai/v1", "http://127.0.0.1:8000/openai/v1/chat/completions"),
])
def test_url_join_with_and_without_trailing_slash(chat: Any, base: str, url: str) -> None:
    with respx.mock() as mock:
        route = mock.post(url).mock(return_value=httpx.Response(200, json=REPLY))
        assert chat(opts(base_url=base)).content == "Hi there"
    assert route.call_count == 1
    assert str(route.calls.last.request.url) == url


@CHAT
def test_default_headers_and_json_body(chat: Any) -> None:
    with respx.mock() as mock:
        route = mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(200, json=REPLY))
        chat(opts())
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == f"llmcli/{__version__}"
    assert json.loads(request.content) == BODY


@CHAT
def test_azure_style_api_key_header_without_scheme_and_api_version(chat: Any) -> None:
    options = opts(base_url="https://res.openai.azure.test/openai/deployments/gpt4o",
                   auth_header="api-key", auth_scheme="", query={"api-version": "2024-06-01"})
    with respx.mock() as mock:
        route = mock.post("https://res.openai.azure.test/openai/deployments/gpt4o/chat/completions",
                          params={"api-version": "2024-06-01"}).mock(
            return_value=httpx.Response(200, json=REPLY))
        chat(options)
    request = route.calls.last.request
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert request.url.params["api-version"] == "2024-06-01"
    assert str(request.url).endswith("/chat/completions?api-version=2024-06-01")


@CHAT
def test_extra_headers_are_sent_and_no_key_means_no_auth_header(chat: Any) -> None:
    options = opts(api_key=None, headers={"HTTP-Referer": "https://example.test",
                                          "X-Title": "llmcli tests"})
    with respx.mock() as mock:
        route = mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(200, json=REPLY))
        chat(options)
    headers = route.calls.last.request.headers
    assert headers["http-referer"] == "https://example.test"
    assert headers["x-title"] == "llmcli tests"
    assert "authorization" not in headers


def test_list_models_request_has_query_and_no_content_type() -> None:
    options = opts(query={"api-version": "1"})
    with respx.mock() as mock:
        route = mock.get(BASE + "/models").mock(return_value=httpx.Response(200, json={"data": []}))
        with Client(options) as client:
            assert client.list_models() == []
    request = route.calls.last.request
    assert request.url.params["api-version"] == "1"
    assert "content-type" not in request.headers
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_timeouts_come_from_the_options() -> None:
    with respx.mock() as mock:
        route = mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(200, json=REPLY))
        sync_chat(opts(connect_timeout=3.0, read_timeout=42.0))
        sync_chat(opts(connect_timeout=3.0, read_timeout=42.0, max_time=20.0))
    first, second = (call.request.extensions["timeout"] for call in route.calls)
    assert first == {"connect": 3.0, "read": 42.0, "write": 42.0, "pool": 42.0}
    assert second["connect"] == 3.0
    assert 10.0 < second["read"] <= 20.0        # capped by the total budget


def test_build_chat_body_and_messages() -> None:
    messages = messages_for("hi", system="be brief")
    assert messages == [{"role": "system", "content": "be brief"},
                        {"role": "user", "content": "hi"}]
    history = [{"role": "system", "content": "old"}, {"role": "user", "content": "a"}]
    assert messages_for(None, "new", history)[0] == {"role": "system", "content": "new"}
    assert history[0]["content"] == "old"          # the caller's list is not changed
    body = build_chat_body("m", messages, {"temperature": 0.2, "max_tokens": None, "seed": 1},
                           stream=True)
    assert body == {"model": "m", "messages": messages, "temperature": 0.2, "seed": 1,
                    "stream": True, "stream_options": {"include_usage": True}}
    assert "stream" not in build_chat_body("m", messages)


# --- response parsing --------------------------------------------------------------------

@pytest.mark.parametrize("payload, ids", [
    ({"object": "list", "data": [{"id": "b", "object": "model"}, {"id": "a"}]}, ["b", "a"]),
    ([{"id": "x"}, {"id": "y"}], ["x", "y"]),
    (["llama3", "qwen"], ["llama3", "qwen"]),
    ({"data": []}, []),
])
def test_list_models_parses_data_list_and_bare_list(payload: Any, ids: list[str]) -> None:
    with respx.mock() as mock:
        mock.get(BASE + "/models").mock(return_value=httpx.Response(200, json=payload))
        with Client(opts()) as client:
            models = client.list_models()
    assert [m["id"] for m in models] == ids


def test_async_list_models() -> None:
    async def main() -> list[dict[str, Any]]:
        async with AsyncClient(opts(), backend="httpx") as client:
            return await client.list_models()

    with respx.mock() as mock:
        mock.get(BASE + "/models").mock(return_value=httpx.Response(200, json={"data": [{"id": "m"}]}))
        assert asyncio.run(main()) == [{"id": "m"}]


@CHAT
def test_chat_result_fields(chat: Any) -> None:
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(
            200, json=REPLY, headers={"x-request-id": "req_abc"}))
        result = chat(opts())
    assert (result.content, result.finish_reason, result.id, result.model) == (
        "Hi there", "stop", "chatcmpl-9", "gpt-x")
    assert result.usage == REPLY["usage"]
    assert result.raw == REPLY
    assert result.request_id == "req_abc" and result.attempts == 1


@CHAT
@pytest.mark.parametrize("content, text", [
    ([{"type": "text", "text": "Hello, "}, {"type": "image_url", "image_url": {}},
      {"type": "text", "text": "world"}], "Hello, world"),
    (None, ""),
    ("", ""),
])
def test_chat_content_parts_and_null_content(chat: Any, content: Any, text: str) -> None:
    reply = json.loads(json.dumps(REPLY))
    reply["choices"][0]["message"]["content"] = content
    reply["choices"][0]["finish_reason"] = "length"
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(200, json=reply))
        result = chat(opts())
    assert result.content == text and result.finish_reason == "length"


@CHAT
def test_a_200_that_is_not_json_is_an_invalid_response(chat: Any) -> None:
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(
            200, text="<html><title>Captive portal</title></html>"))
        exc = caught(chat, opts())
    assert isinstance(exc, InvalidResponseError) and exc.status == 200
    assert "not JSON" in exc.message


# --- the key never leaks -------------------------------------------------------------

ECHO = {"error": {"message": f"Incorrect API key provided: {KEY}. You can find your API "
                             "key at https://platform.openai.com/account/api-keys.",
                  "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def all_text(exc: BaseException) -> str:
    return " ".join([str(exc), repr(exc), exc.message, json.dumps(exc.to_dict())])


@CHAT
def test_a_401_echoing_the_key_never_shows_it(chat: Any) -> None:
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(401, json=ECHO))
        exc = caught(chat, opts())
    assert isinstance(exc, AuthenticationError) and exc.code == "invalid_api_key"
    assert KEY not in all_text(exc)
    assert "sk-...WXYZ" in exc.message


def test_a_401_on_list_models_echoing_the_key_never_shows_it() -> None:
    with respx.mock() as mock:
        mock.get(BASE + "/models").mock(return_value=httpx.Response(401, text=f"bad key {KEY}"))
        with Client(opts()) as client:
            exc = caught(client.list_models)
    assert KEY not in all_text(exc) and exc.status == 401


@CHAT
def test_connection_error_mentioning_the_key_is_masked(chat: Any) -> None:
    options = opts(base_url=f"https://api.test/v1?key={KEY}")
    with respx.mock() as mock:
        mock.post(url__startswith="https://api.test/").mock(
            side_effect=httpx.ConnectError(f"refused while sending {KEY}"))
        exc = caught(chat, options)
    assert isinstance(exc, APIConnectionError)
    assert KEY not in all_text(exc)
    assert "api.test" in exc.message


@CHAT
def test_a_200_page_echoing_the_key_never_shows_it(chat: Any) -> None:
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(
            200, text=f"debug: Authorization: Bearer {KEY}"))
        exc = caught(chat, opts())
    assert isinstance(exc, InvalidResponseError)
    assert KEY not in all_text(exc)


def test_an_in_stream_error_echoing_the_key_never_shows_it() -> None:
    event = json.dumps({"error": {"message": f"key {KEY} revoked", "type": "auth"}})
    with respx.mock() as mock:
        mock.post(BASE + "/chat/completions").mock(return_value=httpx.Response(
            200, content=f"data: {event}\n\n".encode(),
            headers={"content-type": "text/event-stream"}))
        with Client(opts()) as client:
            exc = caught(lambda: list(client.stream_chat(BODY)))
    assert "revoked" in exc.message
    assert KEY not in all_text(exc)


def test_options_repr_hides_the_key() -> None:
    options = opts(headers={"x-a": "b"})
    assert KEY not in repr(options) and KEY not in str(options)
    assert "api.test" in repr(options)
    assert options.secrets() == [KEY]
    assert opts(api_key=None).secrets() == []


@pytest.mark.parametrize("key, shown", [
    (None, "(none)"),
    ("", "(none)"),
    ("abc", "***"),
    ("sk-12345678", "***"),                         # 11 chars: too short to show any
    ("sk-abcdefghijkl1234", "sk-...1234"),
    (KEY, "sk-...WXYZ"),
    ("gsk_0123456789abcdef9876", "...9876"),
    ("0123456789abcdef", "...cdef"),
])
def test_mask_key_forms(key: Any, shown: str) -> None:
    assert mask_key(key) == shown
    if key and len(key) >= 12:
        assert key not in mask_key(key)


def test_redact_masks_every_occurrence_and_ignores_empty_secrets() -> None:
    text = f"a {KEY} b {KEY}"
    assert redact(text, [KEY]) == "a sk-...WXYZ b sk-...WXYZ"
    assert redact(text, [""]) == text
    assert redact("nothing here", [KEY]) == "nothing here"


# --- bad configuration surfaces as ConfigError ---------------------------------------

@pytest.mark.parametrize("base", ["api.openai.com/v1", "ftp://example.test/v1", "http:///v1",
                                  "localhost:8080/v1"])
def test_a_base_url_without_http_is_a_config_error_before_any_request(base: str) -> None:
    with pytest.raises(ConfigError, match="base_url must be an http"):
        sync_chat(opts(base_url=base))
    with pytest.raises(ConfigError, match="base_url must be an http"):
        AsyncClient(opts(base_url=base))


def test_unknown_async_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown transport backend"):
        AsyncClient(opts(), backend="curl")


# --- the structural rule ---------------------------------------------------------------

def test_core_and_config_never_import_the_terminal_layer_or_the_sdk() -> None:
    # In a fresh interpreter, so that other tests' imports do not count. click and rich
    # would also come with a plain `import httpx` (its own CLI tool); the core avoids
    # that. yaml: only when a config file exists; aiohttp: only when a client opens.
    code = (
        "import sys\n"
        "import llmcli.core, llmcli.core.client, llmcli.core.aclient, llmcli.config\n"
        "from llmcli.config import load_settings\n"
        "load_settings(environ={})\n"
        "print(','.join(m for m in ('typer', 'click', 'openai', 'rich', 'pygments', 'yaml',"
        " 'aiohttp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
