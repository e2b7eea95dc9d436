"""The error hierarchy and the one status -> class mapping, fed every body shape that
real servers and proxies send back."""

from __future__ import annotations

import json

import pytest

from llmcli.core.chat import check_status, parse_chat, parse_models
from llmcli.core.errors import (APIConnectionError, APIError, APIStatusError, APITimeoutError,
                                AuthenticationError, BadRequestError, ConfigError,
                                InvalidResponseError, NotFoundError, PermissionDeniedError,
                                RateLimitError, RetryableStatusError, ServerError, error_kind,
                                status_error)

NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
             b"</body>\r\n</html>\r\n")


def openai_body(message: str = "bad thing", type: str = "invalid_request_error",
                code: object = "bad_code", param: object = "messages") -> bytes:
    return json.dumps({"error": {"message": message, "type": type, "param": param,
                                 "code": code}}).encode()


@pytest.mark.parametrize("status, cls, retryable", [
    (400, BadRequestError, False),
    (401, AuthenticationError, False),
    (403, PermissionDeniedError, False),
    (404, NotFoundError, False),
    (408, RetryableStatusError, True),
    (409, RetryableStatusError, True),
    (422, BadRequestError, False),
    (429, RateLimitError, True),
    (500, ServerError, True),
    (502, ServerError, True),
    (503, ServerError, True),
    (418, APIStatusError, False),
])
def test_status_maps_to_class_and_retryable(status: int, cls: type, retryable: bool) -> None:
    exc = status_error(status, b"")
    assert type(exc) is cls
    assert exc.status == status
    assert exc.retryable is retryable
    assert exc.message == f"HTTP {status}"


def test_unknown_4xx_is_the_base_status_error_and_not_retried() -> None:
    exc = status_error(418, b"I'm a teapot")
    assert type(exc) is APIStatusError
    assert error_kind(exc) == "api_error"
    assert exc.message == "HTTP 418: I'm a teapot"


def test_openai_shaped_body_gives_message_and_fields() -> None:
    exc = status_error(400, openai_body("Invalid 'messages': empty array."),
                       "application/json", request_id="req_123")
    assert exc.message == "HTTP 400: Invalid 'messages': empty array."
    assert (exc.type, exc.code, exc.param, exc.request_id) == (
        "invalid_request_error", "bad_code", "messages", "req_123")
    assert exc.body["error"]["type"] == "invalid_request_error"


def test_numeric_code_and_null_param_are_normalised() -> None:
    exc = status_error(429, openai_body("slow down", "rate_limit", code=429, param=None))
    assert exc.code == "429"
    assert exc.param is None


@pytest.mark.parametrize("body, expected", [
    (b'{"error": "model not loaded"}', "HTTP 503: model not loaded"),
    (b'{"detail": "Not authenticated"}', "HTTP 503: Not authenticated"),
    (b'{"message": "upstream overloaded"}', "HTTP 503: upstream overloaded"),
    (b"Internal Server Error", "HTTP 503: Internal Server Error"),
    (b"  line one\n\n   line two  \n", "HTTP 503: line one line two"),
    (b"", "HTTP 503"),
    (b"   \n", "HTTP 503"),
    (b"[1, 2]", "HTTP 503: [1, 2]"),
])
def test_non_openai_bodies_give_a_short_message(body: bytes, expected: str) -> None:
    exc = status_error(503, body)
    assert exc.message == expected
    assert exc.type is None and exc.code is None


def test_fastapi_validation_detail_list() -> None:
    body = json.dumps({"detail": [
        {"loc": ["body", "messages"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "temperature"], "msg": "ensure this value is <= 2",
         "type": "value_error"},
    ]}).encode()
    exc = status_error(422, body, "application/json")
    assert isinstance(exc, BadRequestError)
    assert exc.message == ("HTTP 422: body.messages: field required; "
                           "body.temperature: ensure this value is <= 2")


def test_plain_text_500() -> None:
    exc = status_error(500, b"Internal Server Error\n", "text/plain")
    assert isinstance(exc, ServerError)
    assert exc.message == "HTTP 500: Internal Server Error"
    assert exc.body == "Internal Server Error"


def test_nginx_html_page_uses_its_title() -> None:
    exc = status_error(502, NGINX_502, "text/html")
    assert exc.message == "HTTP 502: HTML page: 502 Bad Gateway"
    assert "<" not in exc.message


def test_html_recognised_without_content_type_and_without_title() -> None:
    assert status_error(502, NGINX_502).message == "HTTP 502: HTML page: 502 Bad Gateway"
    exc = status_error(503, b"<!DOCTYPE html><html><body><p>down</p></body></html>")
    assert exc.message == "HTTP 503: the server answered with an HTML page"


def test_huge_body_is_shortened_to_one_line() -> None:
    exc = status_error(500, ("word " * 20000).encode())
    assert len(exc.message) <= len("HTTP 500: ") + 300
    assert exc.message.endswith("...")
    assert "\n" not in exc.message
    huge_json = status_error(400, openai_body("x" * 100_000))
    assert len(huge_json.message) <= len("HTTP 400: ") + 300


def test_invalid_utf8_body_never_crashes() -> None:
    exc = status_error(500, b"\xff\xfe oops \xc3(")
    assert isinstance(exc, ServerError)
    assert "oops" in exc.message
    exc = status_error(400, b'{"error": {"message": "caf\xe9"}}')   # latin-1 inside JSON
    assert exc.message.startswith("HTTP 400: caf")


def test_error_object_without_message_falls_back_to_the_body_text() -> None:
    exc = status_error(500, b'{"error": {"message": null}}')
    assert exc.message == 'HTTP 500: {"error": {"message": null}}'


def test_to_dict_is_the_stable_shape() -> None:
    exc = status_error(429, openai_body("slow down", "requests", "rate_limit_exceeded"),
                       request_id="req_9")
    assert exc.to_dict() == {"type": "rate_limit", "message": "HTTP 429: slow down",
                             "status": 429, "code": "rate_limit_exceeded",
                             "retryable": True, "request_id": "req_9"}
    assert json.loads(json.dumps(exc.to_dict())) == exc.to_dict()


@pytest.mark.parametrize("exc, kind, retryable", [
    (APIConnectionError("refused"), "connection_error", True),
    (APITimeoutError("read timeout"), "timeout", True),
    (InvalidResponseError("not JSON"), "invalid_response", False),
    (ConfigError("bad"), "config_error", False),
    (status_error(401, b""), "authentication_error", False),
    (status_error(404, b""), "not_found", False),
    (status_error(500, b""), "server_error", True),
])
def test_kinds_and_retryable_of_the_other_classes(exc: Exception, kind: str,
                                                  retryable: bool) -> None:
    assert error_kind(exc) == kind
    assert exc.retryable is retryable


def test_timeout_is_a_connection_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APIStatusError, APIError)


def test_check_status_passes_2xx_and_raises_with_request_id_and_retry_after() -> None:
    assert check_status(200, {}, b"") is None
    assert check_status(204, {}, b"") is None
    with pytest.raises(RateLimitError) as info:
        check_status(429, {"x-request-id": "req_1", "retry-after": "7",
                           "content-type": "application/json"}, openai_body("slow"))
    assert info.value.request_id == "req_1"
    assert info.value.retry_after == 7.0
    assert str(info.value) == "HTTP 429: slow"
    with pytest.raises(APIStatusError) as info:
        check_status(302, {}, b"moved")
    assert info.value.status == 302


def test_check_status_masks_an_echoed_secret() -> None:
    key = "sk-proj-SECRETSECRETSECRET1234"
    body = openai_body(f"Incorrect API key provided: {key}.", "invalid_request_error",
                       "invalid_api_key", None)
    with pytest.raises(AuthenticationError) as info:
        check_status(401, {}, body, secrets=[key])
    assert key not in str(info.value) and key not in info.value.message
    assert "sk-...1234" in info.value.message


@pytest.mark.parametrize("body", [
    b"<html><body>Bad gateway</body></html>",
    b"not json at all",
    b"",
    b"\xff\xfe\x00garbage",
])
def test_200_with_a_non_json_body_is_an_invalid_response(body: bytes) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_chat(body, 200, {"x-request-id": "req_2"})
    assert "not JSON" in info.value.message
    assert info.value.status == 200 and info.value.request_id == "req_2"
    assert info.value.retryable is False


@pytest.mark.parametrize("obj", [
    {"id": "x", "choices": []},
    {"id": "x"},
    {"choices": None},
    {"choices": ["text"]},
    [],
    "a string",
    42,
])
def test_200_without_usable_choices_is_an_invalid_response(obj: object) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_chat(json.dumps(obj).encode(), 200, {})
    assert info.value.message == "the response has no choices"


def test_200_carrying_an_error_object_raises_it() -> None:
    with pytest.raises(APIError) as info:
        parse_chat(openai_body("model crashed", "server_error", None, None), 200, {})
    assert "model crashed" in info.value.message


@pytest.mark.parametrize("obj", [{"object": "list"}, {"data": "nope"}, "x"])
def test_models_without_a_list_is_an_invalid_response(obj: object) -> None:
    with pytest.raises(InvalidResponseError):
        parse_models(json.dumps(obj).encode(), 200, {})
