"""The test server over the wire: models, chat, SSE framing, and fidelity with the
official ``openai`` SDK. Real sockets on 127.0.0.1, no mocks."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from llmcli.testing import (MockOpenAIServer, count_tokens, parse_directives,
                            parse_fault, reply_for, stream_pieces)
from llmcli.testing.faults import FaultError

from .helpers import KEY, body, sse_data, user


# -- pure functions ------------------------------------------------------------
def test_reply_for_strips_directives_and_counts_words() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "hello  #latency:5"},
                                     {"type": "text", "text": "world #keepalive issue #12"}]},
    ]
    assert reply_for(messages) == "echo: hello world issue #12"
    assert reply_for(messages, max_tokens=2) == "echo: hello"
    assert reply_for(user("#chunks:3 ignored text")) == "w0 w1 w2"
    assert stream_pieces("w0 w1 w2") == ["w0 ", "w1 ", "w2"]
    assert count_tokens(" a  b\nc ") == 3
    text, found = parse_directives("x #fault:429@1*2 #interval:7 C#")
    assert (text.split(), found.fault, found.interval_ms) == (["x", "C#"], "429@1*2", 7)


def test_parse_fault_grammar() -> None:
    fault = parse_fault("429@1*2")
    assert (fault.kind, fault.status, fault.retry_after, fault.count) == ("status", 429, "1", 2)
    assert parse_fault("503@ms:250").retry_headers() == b"retry-after-ms: 250\r\n"
    assert parse_fault("dropmid").count is None
    for bad in ("4299", "teapot", "429@soon", "status"):
        with pytest.raises(FaultError):
            parse_fault(bad)


def test_server_class_is_not_collected_by_pytest() -> None:
    assert MockOpenAIServer.__test__ is False


# -- models and chat over plain HTTP -----------------------------------------------
def test_models_list_get_and_404(http: httpx.Client) -> None:
    listing = http.get("/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["test-model", "test-model-large", "gpt-4o-mini"]
    assert http.get("/models/gpt-4o-mini").json() == {
        "id": "gpt-4o-mini", "object": "model", "created": 1700000000, "owned_by": "llmcli-test"}
    missing = http.get("/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_chat_completion_shape(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=body("one two three"))
    data = response.json()
    assert response.headers["x-request-id"].startswith("req_")
    assert data["id"].startswith("chatcmpl-") and data["object"] == "chat.completion"
    assert isinstance(data["created"], int) and data["model"] == "test-model"
    assert data["choices"] == [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                "message": {"role": "assistant", "refusal": None,
                                            "content": "echo: one two three"}}]
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_max_tokens_cuts_reply_with_length(http: httpx.Client) -> None:
    data = http.post("/chat/completions", json=body("a b c d", max_completion_tokens=3)).json()
    assert data["choices"][0]["message"]["content"] == "echo: a b"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


def test_raw_stream_framing_keepalive_comment_and_chunks(http: httpx.Client) -> None:
    request = body("#chunks:5 #keepalive", stream=True)
    with http.stream("POST", "/chat/completions", json=request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["x-request-id"].startswith("req_")
        lines = sse_data(response)
    assert lines[0] == ": keep-alive" and lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[1:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    deltas = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert deltas == ["w0 ", "w1 ", "w2 ", "w3 ", "w4"]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)  # include_usage was not asked for
    plain = http.post("/chat/completions", json=body("#chunks:5 #keepalive")).json()
    assert plain["choices"][0]["message"]["content"] == "".join(deltas)


# -- fidelity with the official SDK ----------------------------------------------------
def test_sdk_models_and_chat(sdk: openai.OpenAI) -> None:
    assert [m.id for m in sdk.models.list()] == ["test-model", "test-model-large", "gpt-4o-mini"]
    messages = [{"role": "system", "content": "be terse"}, *user("Hi there, SDK!")]
    completion = sdk.chat.completions.create(model="test-model", messages=messages)
    assert completion.choices[0].message.content == reply_for(messages) == "echo: Hi there, SDK!"
    assert completion.usage is not None and completion.usage.prompt_tokens == 5
    assert completion.usage.total_tokens == 5 + 4


def test_sdk_stream_with_usage(sdk: openai.OpenAI) -> None:
    messages = user("stream these words please")
    chunks = list(sdk.chat.completions.create(
        model="test-model-large", messages=messages, stream=True,
        stream_options={"include_usage": True}))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == reply_for(messages)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(content.split())


def test_sdk_error_classes(server: MockOpenAIServer, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="no-such-model", messages=user("x"))
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(model="test-model", messages=user("#fault:429"))
    assert limited.value.response.headers["x-request-id"].startswith("req_")
    with MockOpenAIServer(api_key="sk-right-key-0000") as locked:
        wrong = openai.OpenAI(base_url=locked.base_url, api_key=KEY, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as denied:
            wrong.models.list()
    assert denied.value.code == "invalid_api_key"
    assert KEY not in denied.value.message and "sk-...abcd" in denied.value.message


def test_sdk_retries_through_counted_fault(server: MockOpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=2)
    messages = user("retry me #fault:429@ms:10*2")
    completion = client.chat.completions.create(model="test-model", messages=messages)
    assert completion.choices[0].message.content == "echo: retry me"
    stats = server.stats()
    assert stats["statuses"] == {"429": 2, "200": 1}


def test_sdk_stream_error_event_raises(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(model="test-model", messages=user("#fault:streamerror"),
                                         stream=True)
    with pytest.raises(openai.APIError, match="simulated stream error"):
        list(stream)


def test_azure_sdk_with_api_key_header_and_api_version() -> None:
    options = {"auth_header": "api-key", "api_key": KEY,
               "required_query": {"api-version": "2024-06-01"}}
    with MockOpenAIServer(**options) as azure:
        client = openai.AzureOpenAI(azure_endpoint=azure.url(""), api_key=KEY,
                                    api_version="2024-06-01", max_retries=0)
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=user("az"))
        assert completion.choices[0].message.content == "echo: az"
        seen = azure.stats()["requests"][-1]
    assert seen["path"] == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert seen["query"] == {"api-version": "2024-06-01"}
    assert seen["headers"]["api-key"] == "sk-...abcd"
