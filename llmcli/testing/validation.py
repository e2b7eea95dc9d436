"""Validation of chat completion requests, with OpenAI's error parameters and codes."""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant", "tool", "developer")


class RequestError(Exception):
    """A request the server refuses; carries the fields of an OpenAI error body."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_


def _is_int(value: Any) -> bool:
    """True for ints that are not bools (JSON ``true`` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_content(content: Any, param: str, role: str) -> None:
    """A content is a string or a list of typed parts; assistants may send null."""
    if isinstance(content, str):
        return
    if content is None and role == "assistant":
        return  # an assistant turn that only carries tool_calls
    if not isinstance(content, list):
        raise RequestError(400, f"Invalid type for '{param}': expected one of a string or "
                                "array of objects.", param, "invalid_type")
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RequestError(400, f"Invalid type for '{param}[{j}]': expected an object "
                                    "with a 'type'.", f"{param}[{j}]", "invalid_type")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise RequestError(400, f"Missing required parameter: '{param}[{j}].text'.",
                               f"{param}[{j}].text", "missing_required_parameter")


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """Validate ``messages`` and return it; raises ``RequestError``."""
    if messages is None:
        raise RequestError(400, "Missing required parameter: 'messages'.", "messages",
                           "missing_required_parameter")
    if not isinstance(messages, list):
        raise RequestError(400, "Invalid type for 'messages': expected an array.",
                           "messages", "invalid_type")
    if not messages:
        raise RequestError(400, "Invalid 'messages': empty array. Expected an array with "
                                "minimum length 1, but got an empty array instead.",
                           "messages", "empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(400, f"Invalid type for 'messages[{i}]': expected an object.",
                               f"messages[{i}]", "invalid_type")
        role = message.get("role")
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES)
            raise RequestError(400, f"Invalid value: {role!r}. Supported values are: "
                                    f"{supported}.", f"messages[{i}].role", "invalid_value")
        _check_content(message.get("content"), f"messages[{i}].content", role)
    return messages


def _check_numbers(payload: dict[str, Any]) -> int | None:
    """Check temperature and the token limits; return the effective max tokens."""
    temperature = payload.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise RequestError(400, "Invalid type for 'temperature': expected a number.",
                               "temperature", "invalid_type")
        if not 0 <= temperature <= 2:
            code = "decimal_above_max_value" if temperature > 2 else "decimal_below_min_value"
            raise RequestError(400, f"Invalid 'temperature': {temperature}. Expected a value "
                                    "between 0 and 2.", "temperature", code)
    limit = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise RequestError(400, f"Invalid type for '{name}': expected an integer.",
                               name, "invalid_type")
        if value < 1:
            raise RequestError(400, f"Invalid '{name}': integer below minimum value. Expected "
                                    f"a value >= 1, but got {value} instead.",
                               name, "integer_below_min_value")
        limit = value if limit is None else min(limit, value)
    return limit


def check_chat(payload: Any, models: frozenset[str], default_model: str | None = None
               ) -> tuple[str, list[dict[str, Any]], int | None, bool, bool]:
    """Validate a chat completion body.

    Returns ``(model, messages, max_tokens, stream, include_usage)``; raises
    ``RequestError`` with OpenAI's status, param and code otherwise.
    """
    if not isinstance(payload, dict):
        raise RequestError(400, "Invalid request body: expected a JSON object.")
    model = payload.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise RequestError(400, "you must provide a model parameter", "model",
                           "missing_required_parameter")
    messages = check_messages(payload.get("messages"))
    max_tokens = _check_numbers(payload)
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError(400, "Invalid type for 'stream': expected a boolean.", "stream",
                           "invalid_type")
    options = payload.get("stream_options")
    if options is not None and not stream:
        raise RequestError(400, "The 'stream_options' parameter is only allowed when 'stream' "
                                "is enabled.", "stream_options", "invalid_value")
    if options is not None and not isinstance(options, dict):
        raise RequestError(400, "Invalid type for 'stream_options': expected an object.",
                           "stream_options", "invalid_type")
    if model not in models:
        raise RequestError(404, f"The model `{model}` does not exist or you do not have "
                                "access to it.", None, "model_not_found")
    include_usage = bool(options and options.get("include_usage"))
    return model, messages, max_tokens, stream, include_usage
