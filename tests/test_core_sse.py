"""The SSE decoder fed hand-split byte chunks, then streaming chat through the real sync
client with respx: deltas, the usage chunk, [DONE], in-stream errors, and when a
stream may (and may not) be retried."""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

import httpx
import pytest
import respx

from llmcli.core import retry
from llmcli.core.client import Client
from llmcli.core.errors import (APIConnectionError, APIError, AuthenticationError,
                                InvalidResponseError, RateLimitError, ServerError)
from llmcli.core.options import ClientOptions
from llmcli.core.sse import SSEDecoder, SSEEvent, iter_events

BASE = "https://api.test/v1"
CHAT_URL = BASE + "/chat/completions"
KEY = "sk-test-stream-0000000000000000"


def decode(*chunks: bytes) -> list[SSEEvent]:
    """Feed the chunks one by one, then close: every event, in order."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def data_of(*chunks: bytes) -> list[str]:
    return [e.data for e in decode(*chunks)]


# --- the decoder ---------------------------------------------------------------------

def test_one_event_in_one_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\n') == [SSEEvent('{"a": 1}', None, None)]
    assert decoder.close() == []


def test_nothing_is_dispatched_before_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("x")]


@pytest.mark.parametrize("chunks", [
    (b'data: {"a"', b': 1}\n\n'),                   # in the middle of the value
    (b"da", b'ta: {"a": 1}\n\n'),                   # in the middle of "data"
    (b"data", b': {"a": 1}\n\n'),                   # before the colon
    (b"data:", b' {"a": 1}\n\n'),                   # between colon and space
    (b'data: {"a": 1}', b"\n", b"\n"),              # between the two newlines
    (b'data: {"a": 1}\n', b"\n"),
])
def test_chunk_boundary_anywhere_in_a_line(chunks: tuple[bytes, ...]) -> None:
    assert data_of(*chunks) == ['{"a": 1}']


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    # Were the CR and the LF taken as two line ends, "a" and "b" would be two events.
    assert data_of(b"data: a\r", b"\ndata: b\r\n\r\n") == ["a\nb"]
    assert data_of(b"data: a\r\n\r", b"\ndata: b\r\n\r\n") == ["a", "b"]
    assert data_of(b"data: a\r\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_crlf_line_endings() -> None:
    assert data_of(b"data: one\r\n\r\ndata: two\r\n\r\n") == ["one", "two"]


def test_lone_cr_line_endings() -> None:
    assert data_of(b"data: one\r\rdata: two\r\r") == ["one", "two"]
    assert data_of(b"data: a\rdata: b\r", b"\r") == ["a\nb"]
    assert data_of(b"data: a\r", b"\r", b"data: b\r\r") == ["a", "b"]


def test_multi_line_data_joins_with_newline() -> None:
    assert data_of(b"data: first\ndata: second\ndata:\ndata: fourth\n\n") == [
        "first\nsecond\n\nfourth"]
    assert data_of(b"data:\n\n") == [""]


def test_comments_and_keep_alives_are_skipped() -> None:
    stream = b": keep-alive\n\n:\n\n: ping\ndata: x\n: inside\ndata: y\n\n: bye\n\n"
    assert data_of(stream) == ["x\ny"]
    assert decode(b": OPENROUTER PROCESSING\n\n" * 5) == []


def test_event_and_id_fields() -> None:
    events = decode(b"event: delta\nid: 7\ndata: x\n\n",
                    b"data: y\n\n",
                    b"event: done\nretry: 1000\nunknown: z\ndata: [DONE]\n\n")
    assert events == [SSEEvent("x", "delta", "7"), SSEEvent("y", None, "7"),
                      SSEEvent("[DONE]", "done", "7")]


def test_an_event_type_without_data_is_not_dispatched_nor_carried_over() -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [SSEEvent("x")]


def test_no_space_after_the_colon_and_only_one_space_dropped() -> None:
    assert decode(b"event:delta\ndata:x\n\n") == [SSEEvent("x", "delta")]
    assert data_of(b"data:  two spaces\n\n") == [" two spaces"]
    assert data_of(b"data\n\n") == [""]


def test_final_event_without_a_blank_line_is_flushed_by_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: last") == [SSEEvent("a")]
    assert decoder.close() == [SSEEvent("last")]
    assert data_of(b"data: last\n") == ["last"]
    assert data_of(b"data: last\r") == ["last"]
    assert data_of(b"data: a\ndata: b") == ["a\nb"]


def test_close_with_nothing_pending_gives_nothing() -> None:
    assert decode() == []
    assert decode(b"data: a\n\n") == [SSEEvent("a")]
    assert decode(b"", b"\n\n\n") == []


def test_utf8_characters_split_across_chunks() -> None:
    text = "héllo 日本語 🎉 ok"
    raw = b"data: " + text.encode() + b"\n\n"
    for cut in range(len(raw) + 1):
        assert data_of(raw[:cut], raw[cut:]) == [text], cut
    assert data_of(*[raw[i:i + 1] for i in range(len(raw))]) == [text]


def chat_chunk(content: Optional[str] = None, finish: Optional[str] = None,
               **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def sse(*objs: Any, sep: bytes = b"\n") -> bytes:
    """An SSE body: each object as one `data:` event (strings as they are)."""
    parts = []
    for obj in objs:
        data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        parts.append(b"data: " + data.encode() + sep + sep)
    return b"".join(parts)


REAL_STREAM = (
    b": keep-alive\r\n\r\n"
    + b"event: message\r\nid: 1\r\n"
    + sse(chat_chunk("Hé"), sep=b"\r\n")
    + sse(chat_chunk("llo 🌍"), chat_chunk(" multi"), sep=b"\n")
    + b"data: {\"id\": \"chatcmpl-1\",\ndata: \"choices\": []}\n\n"
    + sse(chat_chunk(finish="stop"), {"id": "chatcmpl-1", "choices": [], "usage": USAGE},
          sep=b"\r")
    + b"data: [DONE]"
)


def test_every_single_split_of_a_real_stream_decodes_the_same() -> None:
    whole = decode(REAL_STREAM)
    assert [e.data for e in whole][-1] == "[DONE]"
    assert len(whole) == 7
    assert whole[0] == SSEEvent(json.dumps(chat_chunk("Hé"), ensure_ascii=False), "message", "1")
    assert whole[3].data == '{"id": "chatcmpl-1",\n"choices": []}'
    for cut in range(len(REAL_STREAM) + 1):
        assert decode(REAL_STREAM[:cut], REAL_STREAM[cut:]) == whole, cut


def test_byte_by_byte_and_two_splits_decode_the_same() -> None:
    whole = decode(REAL_STREAM)
    assert decode(*[REAL_STREAM[i:i + 1] for i in range(len(REAL_STREAM))]) == whole
    n = len(REAL_STREAM)
    for a in range(0, n, 7):
        for b in range(a, n, 11):
            assert decode(REAL_STREAM[:a], REAL_STREAM[a:b], REAL_STREAM[b:]) == whole, (a, b)


def test_iter_events_matches_the_decoder() -> None:
    chunks = [REAL_STREAM[:40], REAL_STREAM[40:41], REAL_STREAM[41:]]
    assert list(iter_events(chunks)) == decode(*chunks)


# --- streaming through Client.stream_chat ---------------------------------------------

class Body(httpx.SyncByteStream):
    """A response body sent in the given chunks, optionally failing after them; records
    whether the client closed it."""

    def __init__(self, chunks: list[bytes], fail: Optional[Exception] = None) -> None:
        self.chunks, self.fail, self.closed = chunks, fail, False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.fail is not None:
            raise self.fail

    def close(self) -> None:
        self.closed = True


def streamed(*chunks: bytes, fail: Optional[Exception] = None,
             headers: Optional[dict[str, str]] = None) -> httpx.Response:
    return httpx.Response(200, stream=Body(list(chunks), fail), headers={
        "content-type": "text/event-stream", **(headers or {})})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    monkeypatch.setattr(retry, "JITTER", 0.0)
    return []


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[Client]:
    with Client(ClientOptions(base_url=BASE, api_key=KEY), sleep=sleeps.append) as c:
        yield c


BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True}}
GOOD = sse(chat_chunk("Hel"), chat_chunk("lo"), chat_chunk(finish="stop"),
           {"id": "chatcmpl-1", "model": "m", "choices": [], "usage": USAGE}, "[DONE]")


def drain(stream: Any) -> tuple[list[str], Optional[APIError]]:
    """The deltas received, and the error that ended the stream, if any."""
    deltas: list[str] = []
    try:
        for delta in stream:
            deltas.append(delta)
    except APIError as exc:
        return deltas, exc
    return deltas, None


def test_stream_deltas_finish_reason_and_usage(client: Client) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(return_value=streamed(GOOD[:25], GOOD[25:]))
        stream = client.stream_chat(BODY)
        assert list(stream) == ["Hel", "lo"]
    assert stream.finish_reason == "stop"
    assert stream.usage == USAGE
    assert (stream.id, stream.model, stream.attempts) == ("chatcmpl-1", "m", 1)
    result = stream.result()
    assert (result.content, result.finish_reason, result.usage) == ("Hello", "stop", USAGE)
    request = route.calls.last.request
    assert json.loads(request.content) == dict(BODY, stream=True)
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_role_only_and_empty_deltas_yield_nothing(client: Client) -> None:
    first = chat_chunk()
    first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
    body = sse(first, chat_chunk("x"), chat_chunk(None, "length"), "[DONE]")
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(body))
        stream = client.stream_chat(BODY)
        assert list(stream) == ["x"]
    assert stream.finish_reason == "length"


def test_batches_group_the_deltas_of_one_read(client: Client) -> None:
    one = sse(chat_chunk("a"), chat_chunk("b"), chat_chunk("c"))
    two = sse(chat_chunk("d"), chat_chunk(finish="stop"), "[DONE]")
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(one, b": ping\n\n", two))
        assert list(client.stream_chat(BODY).batches()) == [["a", "b", "c"], ["d"]]


def test_nothing_after_done_is_read(client: Client) -> None:
    after = sse(chat_chunk("ignored"), "not json at all")
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(sse(chat_chunk("x"), "[DONE]") + after))
        stream = client.stream_chat(BODY)
        assert list(stream) == ["x"]
    assert stream.finish_reason is None


def test_the_response_is_closed_when_done_or_abandoned(client: Client) -> None:
    with respx.mock() as mock:
        done, left = Body([GOOD]), Body([sse(chat_chunk("a")), sse(chat_chunk("b"))])
        mock.post(CHAT_URL).mock(side_effect=[httpx.Response(200, stream=done),
                                              httpx.Response(200, stream=left)])
        assert list(client.stream_chat(BODY)) == ["Hel", "lo"]
        assert done.closed
        stream = iter(client.stream_chat(BODY))
        assert next(stream) == "a"
        stream.close()          # the consumer stops early (Ctrl-C, a closed pipe)
        assert left.closed


@pytest.mark.parametrize("split", [False, True])
def test_in_stream_error_is_raised_after_the_deltas_before_it(client: Client,
                                                              split: bool) -> None:
    error = {"error": {"message": "The server is overloaded", "type": "server_error",
                       "code": 503}}
    body = sse(chat_chunk("a"), chat_chunk("b"), error, chat_chunk("never"))
    chunks = [body[:len(sse(chat_chunk("a")))], body[len(sse(chat_chunk("a"))):]] if split \
        else [body]
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[streamed(*chunks), streamed(GOOD)])
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == ["a", "b"]
    assert isinstance(exc, ServerError)
    assert exc.message == "error in stream: The server is overloaded"
    assert (exc.type, exc.code) == ("server_error", "503")
    assert exc.retryable is False        # bytes were received: no retry, no repeat
    assert route.call_count == 1


def test_in_stream_error_as_plain_text(client: Client) -> None:
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(sse({"error": "model crashed"})))
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == [] and isinstance(exc, APIError)
    assert exc.message == "error in stream: model crashed"


@pytest.mark.parametrize("status, headers, expected_sleep", [
    (429, {"retry-after": "2"}, 2.0),
    (503, {}, 0.5),
])
def test_stream_retried_when_the_status_fails_before_any_byte(
        client: Client, sleeps: list[float], status: int, headers: dict[str, str],
        expected_sleep: float) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[
            httpx.Response(status, json={"error": {"message": "busy"}}, headers=headers),
            streamed(GOOD)])
        stream = client.stream_chat(BODY)
        assert list(stream) == ["Hel", "lo"]
    assert route.call_count == 2 and stream.attempts == 2
    assert sleeps == [expected_sleep]


def test_stream_retried_when_the_body_fails_before_any_byte(client: Client,
                                                            sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[
            streamed(fail=httpx.ReadTimeout("slow")), streamed(GOOD)])
        assert list(client.stream_chat(BODY)) == ["Hel", "lo"]
    assert route.call_count == 2 and sleeps == [0.5]


def test_stream_not_retried_once_bytes_were_received(client: Client,
                                                     sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[
            streamed(sse(chat_chunk("partial")), fail=httpx.RemoteProtocolError("dropped")),
            streamed(GOOD)])
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == ["partial"]
    assert isinstance(exc, APIConnectionError) and exc.retryable is False
    assert route.call_count == 1 and sleeps == []


def test_stream_not_retried_after_a_keep_alive_only(client: Client,
                                                    sleeps: list[float]) -> None:
    # Even bytes that carried no delta count: the server has started answering.
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[
            streamed(b": keep-alive\n\n", fail=httpx.ReadTimeout("slow")), streamed(GOOD)])
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == [] and isinstance(exc, APIConnectionError)
    assert route.call_count == 1


def test_stream_error_status_is_mapped_and_not_retried(client: Client,
                                                       sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(return_value=httpx.Response(
            401, json={"error": {"message": f"Incorrect API key provided: {KEY}",
                                 "type": "invalid_request_error"}},
            headers={"x-request-id": "req_7"}))
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == [] and isinstance(exc, AuthenticationError)
    assert exc.request_id == "req_7" and exc.status == 401
    assert KEY not in str(exc) and "sk-...0000" in exc.message
    assert route.call_count == 1 and sleeps == []


def test_stream_gives_up_after_max_retries(client: Client, sleeps: list[float]) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(return_value=httpx.Response(429))
        deltas, exc = drain(client.stream_chat(BODY))
    assert isinstance(exc, RateLimitError) and route.call_count == 4
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("body", [
    sse(chat_chunk("a"), chat_chunk("b")),                       # cut short, no [DONE]
    b"",                                                         # nothing at all
])
def test_stream_ending_without_done_or_finish_reason_is_invalid(client: Client,
                                                                body: bytes) -> None:
    with respx.mock() as mock:
        route = mock.post(CHAT_URL).mock(side_effect=[streamed(body), streamed(GOOD)])
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == (["a", "b"] if body else [])
    assert isinstance(exc, InvalidResponseError)
    assert "ended before the reply was complete" in exc.message
    assert route.call_count == 1


def test_stream_with_finish_reason_but_no_done_is_accepted(client: Client) -> None:
    body = sse(chat_chunk("a"), chat_chunk(finish="stop"))
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(body[:-1]))   # last newline missing
        stream = client.stream_chat(BODY)
        assert list(stream) == ["a"]
    assert stream.finish_reason == "stop"


def test_stream_event_that_is_not_json_is_invalid(client: Client) -> None:
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(sse(chat_chunk("a"), "<html>oops")))
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == ["a"]
    assert isinstance(exc, InvalidResponseError) and "not JSON" in exc.message


@pytest.mark.parametrize("chunk", [
    {"choices": ["not an object"]},
    {"choices": [{"delta": "text"}]},
    {"choices": {"0": {}}},
    {"choices": [{"delta": {"content": 42}}]},
])
def test_malformed_chunks_never_crash(client: Client, chunk: dict[str, Any]) -> None:
    with respx.mock() as mock:
        mock.post(CHAT_URL).mock(return_value=streamed(sse(chat_chunk("a"), chunk, "[DONE]")))
        deltas, exc = drain(client.stream_chat(BODY))
    assert deltas == ["a"]
    assert isinstance(exc, InvalidResponseError)
