"""The dialect adapters as pure functions: canonical request -> native request, native
response/stream/error -> ChatResult, and how a dialect is chosen."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from llmcli.config import load_settings
from llmcli.core.chat import parse_chat
from llmcli.core.client import Client
from llmcli.core.dialects import DIALECTS, get_dialect
from llmcli.core.errors import (ConfigError, InvalidResponseError, RateLimitError,
                                ServerError)
from llmcli.core.options import ClientOptions
from llmcli.core.sse import SSEDecoder

from .conftest import ROOT, run_cli

PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0x"
TXT = "data:text/plain;base64,aGVsbG8="   # "hello"
SCHEMA = {"type": "json_schema", "json_schema": {
    "name": "person", "strict": True,
    "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}


def canonical(**extra: Any) -> dict[str, Any]:
    """A canonical body with every part type."""
    return {"model": "m", "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": PNG}},
            {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}}]},
        {"role": "assistant", "content": "seen"},
        {"role": "user", "content": "again"}], **extra}


def build(api: str, body: dict[str, Any], stream: bool = False) -> Any:
    return get_dialect(api).build_request(body, stream=stream)


# -- requests -------------------------------------------------------------------------------

def test_openai_chat_sends_the_canonical_body_as_it_is() -> None:
    body = canonical(response_format=SCHEMA, seed=3)
    req = build("openai-chat", body, stream=True)
    assert (req.method, req.path) == ("POST", "/chat/completions")
    assert req.body == dict(body, stream=True, stream_options={"include_usage": True})


def test_responses_request_uses_input_items_and_text_format() -> None:
    req = build("openai-responses", canonical(response_format=SCHEMA, max_tokens=9, seed=3),
                stream=True)
    assert req.path == "/responses" and req.body["stream"] is True
    assert req.body["instructions"] == "sys" and req.body["max_output_tokens"] == 9
    assert req.body["seed"] == 3   # an extra field goes as it is
    first, reply, last = req.body["input"]
    assert first["content"] == [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": PNG, "detail": "auto"},
        {"type": "input_image", "image_url": "https://x.test/cat.jpg", "detail": "auto"},
        {"type": "input_file", "file_data": PDF, "filename": "a.pdf"}]
    assert reply == {"role": "assistant", "content": "seen"} and last["content"] == "again"
    assert req.body["text"] == {"format": {"type": "json_schema", "name": "person",
                                           "schema": SCHEMA["json_schema"]["schema"],
                                           "strict": True}}


def test_anthropic_request_has_system_blocks_sources_and_output_format() -> None:
    body = canonical(response_format=SCHEMA, stop="END", top_k=5)
    body["messages"][1]["content"].append({"type": "file", "file": {"file_data": TXT}})
    req = build("anthropic", body)
    assert req.path == "/messages" and req.headers == {"anthropic-version": "2023-06-01"}
    assert req.body["system"] == "sys" and req.body["max_tokens"] == 4096
    assert req.body["stop_sequences"] == ["END"] and req.body["top_k"] == 5
    assert "stream" not in req.body
    assert req.body["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
        {"type": "document", "title": "a.pdf",
         "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "hello"}}]
    assert req.body["output_config"] == {"format": {
        "type": "json_schema", "schema": SCHEMA["json_schema"]["schema"]}}


def test_anthropic_max_tokens_comes_from_the_request_when_set() -> None:
    assert build("anthropic", canonical(max_tokens=7)).body["max_tokens"] == 7
    assert build("anthropic", canonical(max_completion_tokens=8)).body["max_tokens"] == 8


def test_gemini_request_has_contents_parts_and_generation_config() -> None:
    body = canonical(response_format=SCHEMA, max_tokens=9, temperature=0.2, stop=["x"],
                     generationConfig={"topK": 4}, safetySettings=[])
    req = build("gemini", body, stream=True)
    assert (req.path, req.query) == ("/models/m:streamGenerateContent", {"alt": "sse"})
    assert req.body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    user, model, again = req.body["contents"]
    assert user["role"] == "user" and model == {"role": "model", "parts": [{"text": "seen"}]}
    assert user["parts"] == [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}]
    assert req.body["generationConfig"] == {
        "temperature": 0.2, "maxOutputTokens": 9, "stopSequences": ["x"],
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA["json_schema"]["schema"], "topK": 4}
    assert req.body["safetySettings"] == [] and "model" not in req.body


@pytest.mark.parametrize("model,path", [("gemini-2.5-flash", "/models/gemini-2.5-flash"),
                                        ("models/gemini-pro", "/models/gemini-pro"),
                                        ("tunedModels/abc", "/tunedModels/abc")])
def test_gemini_model_path(model: str, path: str) -> None:
    assert build("gemini", {"model": model, "messages": []}).path == path + ":generateContent"


# -- responses --------------------------------------------------------------------------------

def parse(api: str, obj: Any, status: int = 200) -> Any:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return parse_chat(body, status, {"request-id": "req_1"}, (), get_dialect(api))


def test_responses_parse_text_usage_and_incomplete() -> None:
    result = parse("openai-responses", {
        "id": "resp_1", "model": "m", "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [{"type": "reasoning", "summary": []},
                   {"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}})
    assert (result.content, result.finish_reason, result.id) == ("hi", "length", "resp_1")
    assert result.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert result.raw["output"][0]["type"] == "reasoning" and result.request_id == "req_1"


@pytest.mark.parametrize("api, obj", [
    ("openai-chat", {"choices": [{"message": {"content": ["x", "y"]}, "finish_reason": "stop"}]}),
    ("openai-chat", {"choices": [{"message": {"content": [{"type": "text", "text": ["x", "y"]}]},
                                  "finish_reason": "stop"}]}),
    ("openai-responses", {"status": "completed", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": ["x", "y"]}]}]}),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": ["x", "y"]}]},
                                "finishReason": "STOP"}]}),
])
def test_text_sent_as_a_list_of_strings_is_read_not_dropped(api: str, obj: Any) -> None:
    """Liberal: a list where a string was documented is the text it holds, not an empty
    reply with exit 0."""
    assert parse(api, obj).content == "xy"


def test_responses_failed_status_is_an_error() -> None:
    with pytest.raises(ServerError, match="boom"):
        parse("openai-responses", {"status": "failed", "output": [],
                                   "error": {"code": "server_error", "message": "boom"}})


def test_anthropic_parse_maps_stop_reasons_and_cache_tokens() -> None:
    result = parse("anthropic", {
        "id": "msg_1", "model": "claude", "stop_reason": "tool_use",
        "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "a"},
                    {"type": "tool_use", "name": "f", "input": {}}],
        "usage": {"input_tokens": 1, "cache_read_input_tokens": 10, "output_tokens": 2}})
    assert (result.content, result.finish_reason) == ("a", "tool_calls")
    assert result.usage == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    assert parse("anthropic", {"content": [], "stop_reason": "refusal"}).finish_reason \
        == "content_filter"


def test_gemini_parse_skips_thoughts_and_counts_them_as_completion() -> None:
    result = parse("gemini", {
        "responseId": "r1", "modelVersion": "gemini-x",
        "candidates": [{"content": {"parts": [{"text": "thinking", "thought": True},
                                              {"text": "answer"}]},
                        "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1,
                          "thoughtsTokenCount": 5, "totalTokenCount": 8}})
    assert (result.content, result.finish_reason, result.model) == ("answer", "length",
                                                                     "gemini-x")
    assert result.usage == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}


def test_gemini_blocked_prompt_is_an_empty_content_filter_reply() -> None:
    result = parse("gemini", {"promptFeedback": {"blockReason": "SAFETY"}})
    assert (result.content, result.finish_reason, result.usage) == ("", "content_filter", None)


@pytest.mark.parametrize("api,obj", [
    ("openai-responses", {"id": "x"}), ("anthropic", {"content": {"text": "not blocks"}}),
    ("gemini", {"usageMetadata": {}}), ("anthropic", ["a", "list"]), ("gemini", b"<html>"),
])
def test_odd_success_bodies_are_one_invalid_response_error(api: str, obj: Any) -> None:
    with pytest.raises(InvalidResponseError):
        parse(api, obj)


@pytest.mark.parametrize("api,obj,cls", [
    ("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "o"}},
     ServerError),
    ("anthropic", {"type": "error", "error": {"type": "rate_limit_error", "message": "r"}},
     RateLimitError),
    ("gemini", {"error": {"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}},
     RateLimitError),
    ("gemini", {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
     InvalidResponseError),
])
def test_error_objects_sent_with_200_map_by_their_kind(api: str, obj: Any, cls: type) -> None:
    with pytest.raises(cls):
        parse(api, obj)


def test_gemini_error_status_is_the_error_type() -> None:
    from llmcli.core.errors import status_error

    exc = status_error(429, b'{"error":{"code":429,"message":"q","status":"RESOURCE_EXHAUSTED"}}')
    assert (exc.type, exc.code, exc.message) == ("RESOURCE_EXHAUSTED", "429", "HTTP 429: q")


# -- streams: the test server's own events, split at every awkward place ---------------------

def server_stream(api: str, text: str, partial: bool = False, error: bool = False) -> bytes:
    from llmcli.testing.content import answer_for
    from llmcli.testing.dialects.anthropic import AnthropicAPI
    from llmcli.testing.dialects.base import Call
    from llmcli.testing.dialects.gemini import GeminiAPI
    from llmcli.testing.dialects.responses import ResponsesAPI

    native = {"openai-responses": ResponsesAPI(), "anthropic": AnthropicAPI(),
              "gemini": GeminiAPI()}[api]
    messages = [{"role": "user", "content": text}]
    call = Call("test-model", messages, None, True)
    events = list(native.events(call, answer_for(messages), partial))
    return b"".join(events + ([native.error_event()] if error else []))


def fold(api: str, data: bytes, step: int) -> tuple[list[str], Any]:
    decoder, state, deltas = SSEDecoder(), get_dialect(api).stream_state(), []
    for i in range(0, len(data), step):
        for event in decoder.feed(data[i:i + step]):
            delta = state.apply(event.data, event.event)
            if delta:
                deltas.append(delta)
    for event in decoder.close():
        if (delta := state.apply(event.data, event.event)):
            deltas.append(delta)
    return deltas, state


NATIVE = ["openai-responses", "anthropic", "gemini"]


@pytest.mark.parametrize("api", NATIVE)
@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_a_stream_folds_to_the_reply_however_it_is_split(api: str, step: int) -> None:
    deltas, state = fold(api, server_stream(api, "one two three"), step)
    assert "".join(deltas) == "echo: one two three" == state.result().content
    assert state.finish_reason == "stop" and state.id and state.model == "test-model"
    assert state.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert state.done is (api != "gemini")   # Gemini's stream simply ends


@pytest.mark.parametrize("api", NATIVE)
def test_an_error_event_raises_after_the_deltas_before_it(api: str) -> None:
    decoder, state, deltas = SSEDecoder(), get_dialect(api).stream_state(), []
    with pytest.raises((ServerError, InvalidResponseError), match="simulated stream error"):
        for event in decoder.feed(server_stream(api, "a b c", partial=True, error=True)):
            if (delta := state.apply(event.data, event.event)):
                deltas.append(delta)
    assert deltas == ["echo: ", "a "]


def test_anthropic_message_delta_usage_replaces_the_start_counts() -> None:
    state = get_dialect("anthropic").stream_state()
    state.apply('{"type":"message_start","message":{"id":"m","model":"c","usage":'
                '{"input_tokens":5,"output_tokens":1}}}')
    state.apply('{"type":"message_delta","delta":{"stop_reason":"max_tokens"},'
                '"usage":{"output_tokens":9}}')
    state.apply('{"type":"message_stop"}')
    assert state.usage == {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    assert state.finish_reason == "length" and state.done


@pytest.mark.parametrize("api", NATIVE)
def test_unknown_events_and_odd_shapes_are_ignored(api: str) -> None:
    state = get_dialect(api).stream_state()
    for data in ('{"type":"ping"}', "[]", '"text"', '{"type":"content_block_delta",'
                 '"delta":"not an object"}', '{"candidates":"odd"}', "{}"):
        assert state.apply(data, "whatever") is None
    with pytest.raises(InvalidResponseError, match="not JSON"):
        state.apply("{broken", None)


# -- the client sends what the dialect built ------------------------------------------------

@respx.mock
def test_the_client_sends_each_dialects_auth_and_query() -> None:
    route = respx.post("https://g.test/v1beta/models/m:streamGenerateContent").mock(
        return_value=httpx.Response(200, headers={"content-type": "text/event-stream"},
                                    content=b'data: {"candidates":[{"content":{"parts":'
                                            b'[{"text":"hi"}]},"finishReason":"STOP"}]}\n\n'))
    options = ClientOptions(base_url="https://g.test/v1beta", api_key="gk-1234567890abcdef",
                            api="gemini", auth_query="key")
    with Client(options) as client:
        stream = client.stream_chat({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert list(stream) == ["hi"] and stream.finish_reason == "stop"
    sent = route.calls.last.request
    assert sent.url.params["alt"] == "sse" and sent.url.params["key"] == "gk-1234567890abcdef"
    assert "authorization" not in sent.headers and "x-goog-api-key" not in sent.headers


@respx.mock
def test_anthropic_headers_and_a_529_is_retried() -> None:
    ok = {"id": "m1", "model": "c", "content": [{"type": "text", "text": "yo"}],
          "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}
    route = respx.post("https://a.test/v1/messages").mock(side_effect=[
        httpx.Response(529, json={"type": "error", "error": {"type": "overloaded_error",
                                                             "message": "Overloaded"}}),
        httpx.Response(200, json=ok, headers={"request-id": "req_9"})])
    options = ClientOptions(base_url="https://a.test/v1", api_key="ak-1234567890abcdef",
                            api="anthropic", auth_header="x-api-key", auth_scheme="")
    with Client(options, sleep=lambda s: None) as client:
        result = client.chat({"model": "c", "messages": [{"role": "user", "content": "x"}]})
    assert (result.content, result.attempts, result.request_id) == ("yo", 2, "req_9")
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == "ak-1234567890abcdef"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers


# -- choosing a dialect ------------------------------------------------------------------------

def test_a_native_profile_brings_its_base_url_auth_and_key_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("profiles:\n  claude:\n    api: anthropic\n    model: c\n")
    env = {"OPENAI_API_KEY": "sk-openai-key", "OPENAI_BASE_URL": "https://openai.test/v1",
           "ANTHROPIC_API_KEY": "ak-anthropic"}
    options = load_settings(config=str(cfg), profile="claude", environ=env).client_options()
    assert (options.api, options.base_url) == ("anthropic", "https://api.anthropic.com/v1")
    assert (options.auth_header, options.auth_scheme) == ("x-api-key", "")
    assert options.api_key == "ak-anthropic"   # never OPENAI_API_KEY
    plain = load_settings(config=str(cfg), environ=env).client_options()
    assert (plain.api, plain.api_key, plain.base_url) == ("openai-chat", "sk-openai-key",
                                                          "https://openai.test/v1")


def test_explicit_settings_win_over_the_dialect_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("profiles:\n  g:\n    api: gemini\n    base_url: http://proxy.test/v1beta\n"
                   "    api_key_env: MY_KEY\n    auth_query: key\n")
    options = load_settings(config=str(cfg), profile="g",
                            environ={"MY_KEY": "mine", "GEMINI_API_KEY": "theirs"}
                            ).client_options()
    assert (options.base_url, options.api_key) == ("http://proxy.test/v1beta", "mine")
    assert options.query_params() == {"key": "mine"} and "mine" in options.secrets()


def test_an_unknown_api_is_a_config_error_naming_the_choices(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("api: cohere\n")
    with pytest.raises(ConfigError, match="openai-responses"):
        load_settings(config=str(cfg), environ={})


def test_an_unknown_api_flag_is_a_usage_error(api_env: dict[str, str]) -> None:
    done = run_cli("chat", "hi", "--api", "cohere", env=api_env)
    assert done.returncode == 2 and "--api" in done.stderr and "anthropic" in done.stderr


# -- architecture ------------------------------------------------------------------------------

def test_no_code_outside_core_dialects_branches_on_a_dialect_name() -> None:
    names = "|".join(re.escape(n) for n in DIALECTS)
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=)""")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "llmcli").rglob("*.py")
                 if "dialects" not in path.parts
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders


def test_native_dialects_load_only_when_used() -> None:
    code = ("import sys\nfrom llmcli.core.client import Client\n"
            "from llmcli.core.options import ClientOptions\n"
            "Client(ClientOptions(base_url='http://x.test/v1')).close()\n"
            "print(sorted(m for m in sys.modules if m.startswith('llmcli.core.dialects.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip() == "['llmcli.core.dialects.openai_chat']"


@pytest.mark.parametrize("text", ["plain", 'a "quote" and \\ backslash', "é 😀 \n tab\t",
                                  "", "}}", '"}}', "\\u00e9"])
@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("index", [0, 12])
def test_anthropic_text_delta_shortcut_reads_what_json_reads(text: str, compact: bool,
                                                              index: int) -> None:
    event = {"type": "content_block_delta", "index": index,
             "delta": {"type": "text_delta", "text": text}}
    data = json.dumps(event, separators=(",", ":") if compact else None,
                      ensure_ascii=not compact)
    state = get_dialect("anthropic").stream_state()
    assert state.apply(data, "content_block_delta") == (text or None)
    assert state.parts == ([text] if text else [])
    other = dict(event, delta={"type": "text_delta", "text": text, "extra": 1})
    assert state.apply(json.dumps(other, separators=(",", ":"))) == (text or None)


MIXED_SSE = (b"event: message_start\ndata: {\"a\":1}\n\n"
             b"data: plain\n\n"
             b": keep-alive\n\n"
             b"id: 7\ndata: with id\n\n"
             b"data: after id\n\n"
             b"event: two\ndata: line1\ndata: line2\n\n"
             b"\n\n\ndata: after blanks\n\n"
             b"event:nospace\ndata:nospace\n\n"
             b"event: named\ndata: \n\n"
             b"event: orphan\n\n"
             b"data: last\n\n")


@pytest.mark.parametrize("step", [1, 2, 3, 5, 8, 13, 40, len(MIXED_SSE)])
def test_sse_blocks_decode_like_lines_however_the_bytes_are_split(step: int) -> None:
    """The block shortcut in SSEDecoder must give exactly what the line-by-line rules
    give: whole input at once against every split, with LF and with CRLF."""
    expected = [("{\"a\":1}", "message_start", None), ("plain", None, None),
                ("with id", None, "7"), ("after id", None, "7"),
                ("line1\nline2", "two", "7"), ("after blanks", None, "7"),
                ("nospace", "nospace", "7"), ("", "named", "7"), ("last", None, "7")]
    for data in (MIXED_SSE, MIXED_SSE.replace(b"\n", b"\r\n")):
        decoder, events = SSEDecoder(), []
        for i in range(0, len(data), step):
            events.extend(decoder.feed(data[i:i + step]))
        events.extend(decoder.close())
        assert [tuple(e) for e in events] == expected


def test_response_format_merges_with_the_same_object_given_as_a_param() -> None:
    anthropic = build("anthropic", canonical(response_format=SCHEMA,
                                             output_config={"effort": "low"})).body
    assert anthropic["output_config"]["effort"] == "low"
    assert anthropic["output_config"]["format"]["type"] == "json_schema"
    responses = build("openai-responses", canonical(response_format=SCHEMA,
                                                    text={"verbosity": "low"})).body
    assert responses["text"]["verbosity"] == "low"
    assert responses["text"]["format"]["name"] == "person"


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_dialect_provides_the_whole_protocol(name: str) -> None:
    from llmcli.core.dialects.protocol import Dialect, StreamFolder

    dialect = get_dialect(name)
    wanted = [m for m in vars(Dialect) if not m.startswith("_")]
    assert wanted and all(hasattr(dialect, m) for m in wanted), name
    assert dialect.name == name
    state = dialect.stream_state("req")
    folder = [m for m in list(vars(StreamFolder)) + list(StreamFolder.__annotations__)
              if not m.startswith("_")]
    assert all(hasattr(state, m) for m in folder) and state.request_id == "req"


def test_a_file_given_by_url_is_sent_by_reference() -> None:
    part = {"type": "file", "file": {"file_data": "https://x.test/a.pdf"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    assert build("openai-responses", body).body["input"][0]["content"] == [
        {"type": "input_file", "file_url": "https://x.test/a.pdf"}]
    assert build("anthropic", body).body["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}]
    assert build("gemini", body).body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x.test/a.pdf"}}]


def test_the_stream_mask_tail_search_is_the_plain_one() -> None:
    """options._prefix_tail (run per delta) against the obvious loop it replaced."""
    import random

    from llmcli.core.options import _prefix_tail

    def plain(text: str, secret: str) -> int:
        return next((k for k in range(min(len(secret) - 1, len(text)), 0, -1)
                     if text.endswith(secret[:k])), 0)

    rng = random.Random(7)
    for _ in range(3000):
        secret = "".join(rng.choice("sk-ab") for _ in range(rng.randint(1, 9)))
        text = "".join(rng.choice("sk-ab ") for _ in range(rng.randint(0, 14)))
        assert _prefix_tail(text, secret) == plain(text, secret), (text, secret)
