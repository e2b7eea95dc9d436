"""Structured output on the test server: ``response_format`` checked as OpenAI checks
it, and replies that are JSON of the requested schema.

With ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` the reply
is a JSON value built from the schema (:func:`instance`): every property present,
strings carry the echo of the prompt, numbers the least allowed value, arrays one item
(or ``minItems``), the first ``enum``/``anyOf`` alternative. ``strict: true`` demands
what OpenAI's strict mode demands: every object lists all its properties in
``required`` and sets ``additionalProperties: false``.

Two directives, anywhere in a user message, spoil the reply on request so that a
client's validation and re-asking can be tested: ``#invalid-json`` answers text that
is not JSON, ``#invalid-schema`` answers JSON that breaks the schema (an object with
none of its properties). ``:N`` (default 1) spoils the first N replies after that
message: a client that re-asks (appending the reply and a new user turn) gets a valid
reply on its N+1th try.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from .content import Answer, count_tokens, last_user_text, message_text, parse_directives
from .validation import RequestError

_SPOIL = re.compile(r"(?<!\S)#invalid-(json|schema)(?::(\d+))?(?!\S)")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INVALID_JSON = "Sure! Here is the data you asked for: {name: unquoted, oops"


def check_response_format(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request asks for, if any; raises ``RequestError`` as OpenAI does."""
    fmt = payload.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise RequestError(400, "Invalid value for 'response_format.type': expected one of "
                                "'text', 'json_object', 'json_schema'.", "response_format.type",
                           "invalid_value")
    if fmt["type"] != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RequestError(400, "Missing required parameter: 'response_format.json_schema.name'.",
                           "response_format.json_schema.name", "missing_required_parameter")
    if not _NAME.match(spec["name"]):
        raise RequestError(400, "Invalid 'response_format.json_schema.name': string does not "
                                "match pattern '^[a-zA-Z0-9_-]+$'.",
                           "response_format.json_schema.name", "invalid_value")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise RequestError(400, "Invalid type for 'response_format.json_schema.schema': "
                                "expected an object.", "response_format.json_schema.schema",
                           "invalid_type")
    if spec.get("strict") is True:
        problem = strict_problem(schema, ())
        if problem:
            raise RequestError(400, f"Invalid schema for response_format '{spec['name']}': "
                                    f"{problem}", "response_format", "invalid_json_schema")
    return schema


def strict_problem(schema: Any, context: tuple[str, ...]) -> str | None:
    """What OpenAI's strict mode would refuse in ``schema``, or ``None``."""
    if isinstance(schema, list):
        return next((p for s in schema if (p := strict_problem(s, context))), None)
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if schema.get("type") == "object" or isinstance(props, dict):
        where = f"In context=({', '.join(repr(c) for c in context)})"
        if schema.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        missing = sorted(set(props or {}) - set(schema.get("required") or ()))
        if missing:
            return f"{where}, 'required' is required to be supplied and to be an array " \
                   f"including every key in properties. Missing '{missing[0]}'."
    for key, value in schema.items():
        if key not in ("enum", "const", "default", "required") and isinstance(value, (dict, list)):
            problem = strict_problem(value, (*context, key))
            if problem:
                return problem
    return None


def structured_answer(messages: list[dict[str, Any]], schema: dict[str, Any] | None,
                      answer: Answer) -> Answer:
    """``answer`` with its content replaced by JSON of ``schema`` (or spoiled on request)."""
    if schema is None:
        return answer
    text, _ = parse_directives(_SPOIL.sub(" ", last_user_text(messages)))
    spoil = spoiled(messages)
    if spoil == "json":
        content = INVALID_JSON
    elif spoil == "schema":
        content = json.dumps({"unexpected": True} if schema.get("type") == "object" else None)
    else:
        content = json.dumps(instance(schema, " ".join(("echo: " + text).split()), schema))
    return replace(answer, content=content, finish_reason="stop",
                   completion_tokens=count_tokens(content))


def spoiled(messages: list[dict[str, Any]]) -> str | None:
    """``json`` or ``schema`` when a ``#invalid-...:N`` directive still applies: fewer
    than N assistant turns follow the user message that holds it."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.get("role") != "user":
            continue
        match = _SPOIL.search(message_text(message))
        if match:
            replies = sum(1 for m in messages[i + 1:] if m.get("role") == "assistant")
            return match.group(1) if replies < int(match.group(2) or 1) else None
    return None


def instance(schema: Any, text: str, root: Any) -> Any:
    """A value that matches ``schema`` (the subset structured outputs use)."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        node = root
        for part in [p for p in str(schema["$ref"])[1:].split("/") if p]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return instance(node, text, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return instance(schema[key][0], text, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _typed(kind, schema, text, root)


def _typed(kind: Any, schema: dict[str, Any], text: str, root: Any) -> Any:
    if kind == "object" or (kind is None and "properties" in schema):
        return {name: instance(sub, text, root)
                for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        count = max(int(schema.get("minItems") or 0), 1)
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        return [instance(schema.get("items") or {}, text, root) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    value = text[: schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else text
    return value.ljust(int(schema.get("minLength") or 0), ".")
