"""The test server's native APIs, proven faithful by each provider's official SDK: the
`openai` SDK's Responses API, `anthropic` and `google-genai`. If the SDK parses what the
server sends (JSON, SSE, errors, models), the server speaks the API."""

from __future__ import annotations

from typing import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from llmcli.testing import MockOpenAIServer, reply_for

KEY = "sk-native-0123456789abcdef"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def srv() -> Iterator[MockOpenAIServer]:
    with MockOpenAIServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def oai(srv: MockOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0)


@pytest.fixture
def claude(srv: MockOpenAIServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url[:-3], api_key=KEY, max_retries=0)


@pytest.fixture(params=["v1beta", "v1"])
def gem(srv: MockOpenAIServer, request: pytest.FixtureRequest) -> genai.Client:
    options = types.HttpOptions(base_url=srv.base_url[:-3], api_version=request.param,
                                retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=KEY, http_options=options)


# -- OpenAI Responses ------------------------------------------------------------------------

def test_responses_create(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="test-model", input="hello there", instructions="be brief")
    assert r.output_text == reply_for(user("hello there"))
    assert r.status == "completed" and r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens) == (4, 3)


def test_responses_stream_events_accumulate_to_the_same_text(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="test-model", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "one two"}]}]) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert final.output_text == reply_for(user("one two"))
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3


def test_responses_token_cap_is_incomplete(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="test-model", input="a b c d", max_output_tokens=2)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


def test_responses_errors(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="nope", input="x")
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="test-model", input="x #fault:429")
    events = list(oai.responses.create(model="test-model", input="x y #fault:streamerror",
                                       stream=True))
    assert events[-1].type == "error"   # the SDK hands an `error` event over as an event
    assert "simulated stream error" in events[-1].message   # type: ignore[union-attr]
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == [
        "echo: ", "x "]


# -- Anthropic Messages ---------------------------------------------------------------------

def test_messages_create(claude: anthropic.Anthropic) -> None:
    m = claude.messages.create(model="test-model", max_tokens=100, system="sys",
                               messages=[{"role": "user", "content": "hello claude"}])
    assert m.content[0].type == "text" and m.content[0].text == reply_for(user("hello claude"))
    assert m.stop_reason == "end_turn" and m.usage.output_tokens == 3


def test_messages_stream_accumulates(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="test-model", max_tokens=2,
                                messages=[{"role": "user", "content": "a b c"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "echo: a" and final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 2


def test_messages_errors_and_overloaded(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=5, messages=user("x"))
    assert missing.value.body["error"]["type"] == "not_found_error"   # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        claude.messages.create(model="test-model", max_tokens=5, messages=user("x #fault:529"))
    assert overloaded.value.status_code == 529
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        with claude.messages.stream(model="test-model", max_tokens=50,
                                    messages=user("x y #fault:streamerror")) as s:
            "".join(s.text_stream)


def test_messages_need_max_tokens_and_a_key(claude: anthropic.Anthropic,
                                            srv: MockOpenAIServer) -> None:
    import httpx

    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    url = srv.base_url + "/messages"
    answer = httpx.post(url, headers=headers, json={"model": "test-model", "messages": user("x")})
    assert answer.status_code == 400 and "max_tokens" in answer.json()["error"]["message"]
    no_version = httpx.post(url, headers={"x-api-key": KEY},
                            json={"model": "test-model", "max_tokens": 5, "messages": user("x")})
    assert no_version.status_code == 400 and no_version.json()["type"] == "error"
    wrong = anthropic.Anthropic(base_url=srv.base_url[:-3], api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model="test-model", max_tokens=5, messages=user("x"))


def test_anthropic_models(claude: anthropic.Anthropic) -> None:
    assert [m.id for m in claude.models.list()] == ["test-model", "test-model-large",
                                                    "gpt-4o-mini"]
    assert claude.models.retrieve("test-model").id == "test-model"


# -- Google Gemini ----------------------------------------------------------------------------

def test_generate_content(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction="sys", max_output_tokens=50)
    r = gem.models.generate_content(model="test-model", contents="hello gemini", config=config)
    assert r.text == reply_for(user("hello gemini"))
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata and r.usage_metadata.total_token_count == 6


def test_stream_generate_content(gem: genai.Client) -> None:
    chunks = list(gem.models.generate_content_stream(model="test-model", contents="a b c"))
    assert "".join(c.text or "" for c in chunks) == reply_for(user("a b c"))
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP


def test_gemini_errors(gem: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as missing:
        gem.models.generate_content(model="nope", contents="x")
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"
    with pytest.raises(genai_errors.ServerError) as unavailable:
        gem.models.generate_content(model="test-model", contents="x #fault:503")
    assert unavailable.value.status == "UNAVAILABLE"


def test_gemini_models_and_key_in_query(gem: genai.Client, srv: MockOpenAIServer) -> None:
    assert [m.name for m in gem.models.list()] == ["models/test-model",
                                                   "models/test-model-large",
                                                   "models/gpt-4o-mini"]
    import httpx

    url = srv.base_url[:-3] + "/v1beta/models/test-model:generateContent"
    body = {"contents": [{"parts": [{"text": "q"}]}]}
    assert httpx.post(url, params={"key": KEY}, json=body).status_code == 200
    assert httpx.post(url, params={"key": "bad"}, json=body).status_code == 401


def test_openai_model_list_is_still_openai(oai: openai.OpenAI) -> None:
    """/v1/models is shared: without Anthropic's or Google's headers it is OpenAI's."""
    assert [m.owned_by for m in oai.models.list()] == ["llmcli-test"] * 3


def test_queued_faults_apply_to_the_native_apis(srv: MockOpenAIServer) -> None:
    """POST /_control/faults queues failures for whichever API is asked next."""
    import httpx

    queued = httpx.post(srv.url("/_control/faults"),
                        json={"faults": [{"status": 529, "count": 1}]})
    assert queued.status_code == 200
    client = anthropic.Anthropic(base_url=srv.base_url[:-3], api_key=KEY, max_retries=1)
    m = client.messages.create(model="test-model", max_tokens=5, messages=user("after 529"))
    assert m.content[0].text == reply_for(user("after 529"))   # type: ignore[union-attr]
    assert srv.stats()["statuses"].get("529", 0) >= 1
