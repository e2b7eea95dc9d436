"""Structured output: the JSON Schema a reply must match, checked locally.

A small validator for the subset of JSON Schema that structured-output APIs accept
(OpenAI's strict mode, Gemini's responseSchema, Anthropic's tool input schemas):
``type`` (one or a list, ``"null"`` included), ``properties``, ``required``,
``additionalProperties``, ``items``, ``prefixItems``, ``enum``, ``const``, ``anyOf``,
``allOf``, ``oneOf``, ``not``, ``$ref`` to ``#/$defs/...`` or ``#/definitions/...``,
``minimum``/``maximum`` (and exclusive), ``multipleOf``, ``minLength``/``maxLength``,
``pattern``, ``minItems``/``maxItems``, ``uniqueItems``, ``minProperties``/
``maxProperties``. Keywords outside it (``format``, ``description``, ...) are
annotations and accepted as such, as validators do by default.

Why not the ``jsonschema`` library: it is not a dependency today, and its import alone
costs more than the 15 ms budget ``--schema`` has (docs/performance.md). This module
imports only ``re`` (lazily, for ``pattern``) and validates in microseconds.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator, Optional

from .errors import LLMCLIError, SchemaValidationError

MAX_ERRORS = 3
MAX_DEPTH = 64        # levels of JSON nesting a schema may have (OpenAI allows 10 of objects)
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(LLMCLIError):
    """The schema itself is unusable (not JSON, not an object, a broken ``$ref``)."""


def load_schema(text: str, source: str = "--schema") -> dict[str, Any]:
    """A schema from JSON text; raises :class:`SchemaError`."""
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise SchemaError(f"{source} is nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(schema, dict):
        raise SchemaError(f"{source} must be a JSON object (a JSON Schema)")
    if "type" not in schema and "properties" not in schema and "anyOf" not in schema \
            and "$ref" not in schema:
        raise SchemaError(f"{source} does not look like a JSON Schema: it has no type, "
                          "properties, anyOf or $ref")
    check_schema(schema, source)
    return schema


def check_schema(schema: dict[str, Any], source: str = "--schema") -> None:
    """Refuse, before anything is sent, a schema the validator could not apply: a
    keyword of the wrong type, a ``pattern`` that does not compile, a ``$ref`` to
    nothing or one that loops back without descending into the value, nesting deeper
    than :data:`MAX_DEPTH`. Raises :class:`SchemaError`."""
    _check_depth(schema, source)
    stack: list[tuple[Any, str]] = [(schema, "$")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise SchemaError(f"{source}: {where} must be a schema (an object or a boolean)")
        for problem in _keyword_problems(node, schema):
            raise SchemaError(f"{source}: {where}: {problem}")
        stack.extend(_subschemas(node, where))
    _check_ref_loops(schema, source)


def _check_depth(value: Any, source: str) -> None:
    """Without recursion: a schema too deep to walk is refused, not a crash later."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SchemaError(f"{source} is nested deeper than {MAX_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _subschemas(node: dict[str, Any], where: str) -> Iterator[tuple[Any, str]]:
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            yield sub, f"{where}.{key}.{name}"
    for key in ("items", "additionalProperties", "not"):
        if key in node:
            yield node[key], f"{where}.{key}"
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(key) or ()):
            yield sub, f"{where}.{key}[{i}]"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _keyword_problems(node: dict[str, Any], root: Any) -> Iterator[str]:
    """What is wrong with the keywords of one schema object (their own type only)."""
    kinds = node.get("type", [])
    # Gemini's docs spell types in capitals (STRING): taken, as the validator takes them
    if not all(isinstance(k, str) and k.lower() in _TYPES
               for k in (kinds if isinstance(kinds, list) else [kinds])):
        yield f"type must be one of {', '.join(_TYPES)} (or a list of them), not {json.dumps(kinds)}"
    for key in ("properties", "$defs", "definitions"):
        if not isinstance(node.get(key, {}), dict):
            yield f"{key} must be an object"
    for key in ("prefixItems", "anyOf", "oneOf", "allOf", "enum"):
        if not isinstance(node.get(key, []), list):
            yield f"{key} must be an array"
    required = node.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        yield "required must be an array of property names"
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not _is_number(node[key]):
            yield f"{key} must be a number"
    if "multipleOf" in node and not (_is_number(node["multipleOf"]) and node["multipleOf"] > 0):
        yield "multipleOf must be a number above 0"
    for key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
        value = node.get(key, 0)
        if _whole(value) is None or value < 0 or value != int(value):   # 10.0 is 10
            yield f"{key} must be a whole number, 0 or more"
    yield from _pattern_and_ref_problems(node, root)


def _pattern_and_ref_problems(node: dict[str, Any], root: Any) -> Iterator[str]:
    if "pattern" in node:
        import re

        try:
            re.compile(node["pattern"])
        except (re.error, TypeError) as exc:
            yield f"pattern {json.dumps(node['pattern'])} is not a regular expression ({exc})"
    if "$ref" in node:
        try:
            resolve_ref(node["$ref"], root)
        except SchemaError as exc:
            yield exc.message


def _check_ref_loops(root: dict[str, Any], source: str) -> None:
    """A ``$ref`` (through ``allOf``/``anyOf``/``oneOf``/``not``) that leads back to
    where it started without descending into the value would be checked forever."""
    def same_value(node: Any) -> list[Any]:
        if not isinstance(node, dict):
            return []
        subs = [resolve_ref(node["$ref"], root)] if "$ref" in node else []
        subs += [s for key in ("anyOf", "oneOf", "allOf") for s in node.get(key) or ()]
        return subs + ([node["not"]] if "not" in node else [])

    done: set[int] = set()
    for start, _ in _all_nodes(root):
        path, stack = {id(start)}, [(start, iter(same_value(start)))]
        while stack and id(start) not in done:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.discard(id(node))
                done.add(id(node))
            elif id(child) in path:
                raise SchemaError(f"{source}: a $ref leads back to itself without "
                                  "descending into the value (it would never end)")
            elif id(child) not in done:
                path.add(id(child))
                stack.append((child, iter(same_value(child))))


def _all_nodes(root: Any) -> Iterator[tuple[Any, str]]:
    stack: list[tuple[Any, str]] = [(root, "$")]
    while stack:
        node, where = stack.pop()
        yield node, where
        if isinstance(node, dict):
            stack.extend(_subschemas(node, where))


def schema_name(schema: dict[str, Any], fallback: str = "reply") -> str:
    """The ``json_schema.name`` to send: the schema's ``title`` made safe
    (``^[a-zA-Z0-9_-]{1,64}$``, as OpenAI requires), else ``fallback``."""
    title = schema.get("title")
    if isinstance(title, str):
        name = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in title if ch.isascii())
        if name.strip("_"):
            return name[:64]
    return fallback


def is_strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode would take ``schema``: every object lists all its
    properties as required and forbids others. A schema that is not is sent with
    ``strict: false`` (the API would refuse it) and still validated here."""
    if isinstance(schema, list):
        return all(is_strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if isinstance(props, dict) or schema.get("type") == "object":
        props = props if isinstance(props, dict) else {}
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or ()) != set(props):
            return False
    return all(is_strict_compatible(v) for k, v in schema.items()
               if k not in ("enum", "const", "default", "examples", "required")
               and isinstance(v, (dict, list)))


def response_format(schema: dict[str, Any], name: Optional[str] = None) -> dict[str, Any]:
    """The canonical (Chat Completions) ``response_format`` for ``schema``."""
    return {"type": "json_schema", "json_schema": {
        "name": name or schema_name(schema), "schema": schema,
        "strict": is_strict_compatible(schema)}}


__all__ = ["SchemaError", "SchemaValidationError", "load_schema", "parse_reply", "reask",
           "response_format", "validate"]


def parse_reply(content: str, schema: dict[str, Any], attempts: int = 1,
                request_id: Optional[str] = None) -> Any:
    """The reply parsed as JSON and checked against ``schema``; raises
    :class:`SchemaValidationError`. A ```json fence around it is tolerated: some
    models add one even in JSON mode."""
    text = strip_fence(content)
    try:
        value = json.loads(text)
        errors = list(_first(validate(value, schema), MAX_ERRORS))
    except ValueError as exc:
        raise SchemaValidationError(f"the reply is not JSON ({exc})", content=content,
                                    errors=[f"not JSON: {exc}"], attempts=attempts,
                                    request_id=request_id) from None
    except RecursionError:      # a hostile reply: JSON nested deeper than can be read
        raise SchemaValidationError("the reply is JSON nested too deeply to check",
                                    content=content, errors=["nested too deeply"],
                                    attempts=attempts, request_id=request_id) from None
    if errors:
        raise SchemaValidationError("the reply does not match the schema: " + "; ".join(errors),
                                    content=content, errors=errors, attempts=attempts,
                                    request_id=request_id)
    return value


def strip_fence(content: str) -> str:
    """``content`` without a surrounding Markdown code fence."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3]
        first, _, rest = text.partition("\n")
        return (rest if first.strip().isalnum() or not first.strip() else text).strip()
    return text


def _first(errors: Iterator[str], n: int) -> Iterator[str]:
    for i, error in enumerate(errors):
        if i >= n:
            return
        yield error


def validate(value: Any, schema: Any, root: Any = None, path: str = "$") -> Iterator[str]:
    """Every way ``value`` breaks ``schema``, as ``"$.a[0]: why"`` strings."""
    if schema is True or schema is None or schema == {}:
        return
    if schema is False:
        yield f"{path}: no value is allowed here"
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{path}: a schema must be an object or a boolean")
    root = schema if root is None else root
    if "$ref" in schema:
        yield from validate(value, resolve_ref(schema["$ref"], root), root, path)
    yield from _check_type(value, schema, path)
    yield from _check_values(value, schema, path)
    yield from _check_combinators(value, schema, root, path)
    if isinstance(value, dict):
        yield from _check_object(value, schema, root, path)
    elif isinstance(value, list):
        yield from _check_array(value, schema, root, path)
    elif isinstance(value, str):
        yield from _check_string(value, schema, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield from _check_number(value, schema, path)


def resolve_ref(ref: Any, root: Any) -> Any:
    """The schema a local ``$ref`` (``#``, ``#/$defs/x``) points at."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaError(f"only local $ref ('#/$defs/...') is supported, not {ref!r}")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"$ref {ref!r} points at nothing")
        node = node[part]
    return node


def _check_type(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if schema.get("nullable") is True and kinds:
        kinds = [*kinds, "null"]    # OpenAPI / Gemini spelling of an optional type
    if kinds and not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
        yield f"{path}: expected {' or '.join(map(str, kinds))}, got {_kind(value)}"


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def _check_values(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    if "const" in schema and not _same(value, schema["const"]):
        yield f"{path}: expected {json.dumps(schema['const'])}"
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_same(value, e) for e in enum):
        shown = ", ".join(json.dumps(e) for e in enum[:6]) + (", ..." if len(enum) > 6 else "")
        yield f"{path}: {json.dumps(value)[:40]} is not one of {shown}"


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _check_combinators(value: Any, schema: dict[str, Any], root: Any,
                       path: str) -> Iterator[str]:
    for sub in schema.get("allOf") or ():
        yield from validate(value, sub, root, path)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if not isinstance(options, list):
            continue
        matches = sum(1 for sub in options if not any(True for _ in validate(value, sub, root, path)))
        if matches == 0:
            yield f"{path}: matches none of the {key} alternatives"
        elif key == "oneOf" and matches > 1:
            yield f"{path}: matches {matches} of the oneOf alternatives, not exactly one"
    if "not" in schema and not any(True for _ in validate(value, schema["not"], root, path)):
        yield f"{path}: matches the schema under `not`"


def _check_object(value: dict[str, Any], schema: dict[str, Any], root: Any,
                  path: str) -> Iterator[str]:
    props = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            yield f"{path}: missing required property {name!r}"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = f"{path}.{name}"
        if name in props:
            yield from validate(item, props[name], root, where)
        elif extra is False:
            yield f"{path}: property {name!r} is not allowed"
        elif isinstance(extra, dict):
            yield from validate(item, extra, root, where)
    yield from _bounds(len(value), schema, "minProperties", "maxProperties", path, "properties")


def _check_array(value: list[Any], schema: dict[str, Any], root: Any,
                 path: str) -> Iterator[str]:
    prefix = schema.get("prefixItems") or []
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items")
        if sub is not None:
            yield from validate(item, sub, root, f"{path}[{i}]")
    yield from _bounds(len(value), schema, "minItems", "maxItems", path, "items")
    if schema.get("uniqueItems") is True:
        seen = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(seen)) != len(seen):
            yield f"{path}: items are not unique"


def _check_string(value: str, schema: dict[str, Any], path: str) -> Iterator[str]:
    yield from _bounds(len(value), schema, "minLength", "maxLength", path, "characters")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        import re

        if not re.search(pattern, value):
            yield f"{path}: {value[:40]!r} does not match pattern {pattern!r}"


def _check_number(value: float, schema: dict[str, Any], path: str) -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):   # 1e999 reads as inf
        yield f"{path}: {value} is not a finite number"
        return
    checks = (("minimum", lambda v, b: v >= b, ">="), ("maximum", lambda v, b: v <= b, "<="),
              ("exclusiveMinimum", lambda v, b: v > b, ">"),
              ("exclusiveMaximum", lambda v, b: v < b, "<"))
    for key, ok, sign in checks:
        bound = schema.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not ok(value, bound):
            yield f"{path}: {value} is not {sign} {bound}"
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and abs(value / step - round(value / step)) > 1e-9:
        yield f"{path}: {value} is not a multiple of {step}"


def _whole(bound: Any) -> Optional[int]:
    """A length bound: 10 or 10.0 (checked up front: never 2.5)."""
    return int(bound) if _is_number(bound) and math.isfinite(bound) else None


def _bounds(size: int, schema: dict[str, Any], low: str, high: str, path: str,
            unit: str) -> Iterator[str]:
    lo, hi = _whole(schema.get(low)), _whole(schema.get(high))
    if isinstance(lo, int) and size < lo:
        yield f"{path}: {size} {unit}, fewer than {low} {lo}"
    if isinstance(hi, int) and size > hi:
        yield f"{path}: {size} {unit}, more than {high} {hi}"


def reask(body: dict[str, Any], exc: SchemaValidationError) -> dict[str, Any]:
    """The next request of a ``--schema-retries`` loop: the conversation so far, the
    invalid reply, and a user turn that says what was wrong with it."""
    messages = [*body["messages"], {"role": "assistant", "content": exc.content},
                {"role": "user", "content": (
                    "That reply was not valid: " + "; ".join(exc.errors)
                    + ". Answer again with only a JSON value that matches the schema.")}]
    return {**body, "messages": messages}
