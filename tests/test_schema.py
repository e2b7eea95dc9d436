"""--schema: the local validator, and structured output end to end against the test
server (strict-schema replies, invalid replies on request, re-asks)."""

from __future__ import annotations

import json

import pytest

from llmcli.core.errors import SchemaValidationError
from llmcli.core.schema import (SchemaError, is_strict_compatible, load_schema, parse_reply,
                                reask, response_format, schema_name, strip_fence, validate)

PERSON = {"type": "object", "title": "Person record",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                         "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                         "email": {"type": ["string", "null"]}},
          "required": ["name", "age", "tags", "email"], "additionalProperties": False}


def errors(value, schema):
    return list(validate(value, schema))


def test_a_valid_value_has_no_errors_and_each_broken_rule_is_named():
    assert errors({"name": "Ada", "age": 36, "tags": ["a"], "email": None}, PERSON) == []
    assert errors({"name": "Ada", "age": "36", "tags": ["c"], "email": 1, "x": 1}, PERSON) == [
        "$.age: expected integer, got string",
        "$.tags[0]: \"c\" is not one of \"a\", \"b\"",
        "$.email: expected string or null, got integer",
        "$: property 'x' is not allowed"]
    assert errors({}, PERSON)[0] == "$: missing required property 'name'"
    assert errors({"name": "A", "age": -1, "tags": [], "email": None}, PERSON) == ["$.age: -1 is not >= 0"]


@pytest.mark.parametrize("schema, good, bad", [
    ({"const": 3}, 3, 4),
    ({"type": "integer"}, 2.0, 2.5),
    ({"type": "number"}, 1, True),
    ({"type": "boolean"}, False, 0),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, 1),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1.5, 1),
    ({"allOf": [{"minimum": 1}, {"maximum": 3}]}, 2, 4),
    ({"not": {"type": "string"}}, 1, "x"),
    ({"type": "string", "minLength": 2, "maxLength": 3}, "ab", "abcd"),
    ({"type": "string", "pattern": "^[a-z]+$"}, "abc", "ab1"),
    ({"type": "array", "minItems": 1, "uniqueItems": True}, [1, 2], [1, 1]),
    ({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", 1], [1, 1]),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"a": 1}, {"a": "1"}),
    ({"type": "object", "minProperties": 1}, {"a": 1}, {}),
    ({"type": "number", "multipleOf": 0.5}, 1.5, 1.2),
    ({"type": "number", "exclusiveMaximum": 1}, 0.5, 1),
    ({"type": "string", "nullable": True}, None, 3),
    ({"$defs": {"n": {"type": "integer"}}, "type": "object",
      "properties": {"a": {"$ref": "#/$defs/n"}}}, {"a": 1}, {"a": "x"}),
])
def test_each_keyword_accepts_and_refuses(schema, good, bad):
    assert errors(good, schema) == []
    assert errors(bad, schema) != []


def test_load_schema_refuses_what_is_not_a_schema():
    assert load_schema('{"type": "object"}') == {"type": "object"}
    for text in ("{", "[1]", '{"title": "no type"}'):
        with pytest.raises(SchemaError):
            load_schema(text)
    with pytest.raises(SchemaError, match="only local"):
        errors(1, {"$ref": "http://example.com/s.json"})


def test_strict_is_set_only_when_openai_strict_mode_would_take_the_schema():
    assert is_strict_compatible(PERSON)
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert not is_strict_compatible(loose)
    nested = {**PERSON, "properties": {**PERSON["properties"], "sub": loose}, "required": [*PERSON["required"], "sub"]}
    assert not is_strict_compatible(nested)
    fmt = response_format(PERSON)
    assert fmt == {"type": "json_schema", "json_schema": {"name": "Person_record", "schema": PERSON, "strict": True}}
    assert response_format(loose)["json_schema"]["strict"] is False
    assert schema_name({"title": "!!!"}) == "reply"


def test_parse_reply_tolerates_a_fence_and_reports_what_is_wrong():
    assert strip_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert parse_reply('```json\n{"a": 1}\n```', {"type": "object"}) == {"a": 1}
    with pytest.raises(SchemaValidationError) as info:
        parse_reply('{"name": 3}', PERSON, attempts=2, request_id="req_1")
    exc = info.value
    assert exc.attempts == 2 and exc.request_id == "req_1" and exc.content == '{"name": 3}'
    assert len(exc.errors) == 3     # at most MAX_ERRORS named
    assert exc.to_dict()["type"] == "schema_validation" and exc.to_dict()["errors"] == exc.errors
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    again = reask(body, exc)
    assert [m["role"] for m in again["messages"]] == ["user", "assistant", "user"]
    assert "missing required property 'age'" in again["messages"][-1]["content"] and body["messages"] != again["messages"]


SCHEMA_ARG = json.dumps(PERSON)


def test_chat_schema_prints_the_validated_json_and_sends_strict_json_schema(cli, server):
    done = cli("chat", "--schema", SCHEMA_ARG, "extract schema-e2e-1")
    assert done.returncode == 0, done.stderr
    value = json.loads(done.stdout)
    assert value == {"name": "echo: extract schema-e2e-1", "age": 0, "tags": ["a"], "email": "echo: extract schema-e2e-1"}
    sent = [r["body"] for r in server.stats()["requests"] if "schema-e2e-1" in json.dumps(r["body"])]
    assert sent[-1]["response_format"]["json_schema"]["strict"] is True


def test_chat_schema_from_a_file_with_json_adds_parsed_and_cost(cli, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}}))
    done = cli("chat", "--json", "--schema", str(path), "hi")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["parsed"] == {"n": 0} and json.loads(obj["content"]) == obj["parsed"]
    assert "cost" in obj


def test_an_invalid_reply_exits_8_with_nothing_on_stdout(cli):
    done = cli("chat", "--json", "--schema", SCHEMA_ARG, "give #invalid-json")
    assert done.returncode == 8 and done.stdout == ""
    line, payload = done.stderr.splitlines()[-2:]
    assert line.startswith("llmcli: error: the reply is not JSON")
    error = json.loads(payload)["error"]
    assert error["type"] == "schema_validation" and error["exit_code"] == 8
    assert error["content"].startswith("Sure!") and error["errors"]
    wrong = cli("chat", "--schema", SCHEMA_ARG, "give #invalid-schema")
    assert wrong.returncode == 8 and "missing required property 'name'" in wrong.stderr


def test_schema_retries_ask_again_until_the_reply_validates(cli, server):
    done = cli("chat", "--schema", SCHEMA_ARG, "--schema-retries", "2", "retry-e2e #invalid-schema:2")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["age"] == 0
    assert done.stderr.count("asking again") == 2
    sent = [r["body"] for r in server.stats()["requests"] if "retry-e2e" in json.dumps(r["body"])]
    assert [len(b["messages"]) for b in sent[-3:]] == [1, 3, 5]   # each re-ask carries the last reply


def test_schema_retries_that_run_out_exit_8(cli):
    done = cli("chat", "--schema", SCHEMA_ARG, "--schema-retries", "1", "x #invalid-json:3")
    assert done.returncode == 8 and done.stdout == ""
    assert done.stderr.count("asking again") == 1


def test_stream_schema_streams_then_checks(cli):
    done = cli("stream", "--json", "--schema", SCHEMA_ARG, "streamed")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    text = "".join(x["content"] for x in lines if x["type"] == "delta")
    assert lines[-1]["type"] == "done" and lines[-1]["parsed"] == json.loads(text)
    bad = cli("stream", "--schema", SCHEMA_ARG, "x #invalid-json")
    assert bad.returncode == 8 and bad.stdout.startswith("Sure!")
    refused = cli("stream", "--schema", SCHEMA_ARG, "--schema-retries", "1", "x")
    assert refused.returncode == 2 and "cannot take back" in refused.stderr


def test_bad_schema_arguments_are_usage_errors(cli, tmp_path):
    assert cli("chat", "--schema", "{nope", "hi").returncode == 2
    missing = cli("chat", "--schema", str(tmp_path / "none.json"), "hi")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_the_test_server_refuses_what_openai_refuses():
    from llmcli.testing.structured import check_response_format
    from llmcli.testing.validation import RequestError

    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    with pytest.raises(RequestError, match="additionalProperties"):
        check_response_format({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": loose, "strict": True}}})
    with pytest.raises(RequestError, match="pattern"):
        check_response_format({"response_format": {"type": "json_schema", "json_schema": {
            "name": "a b", "schema": loose}}})
    assert check_response_format({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": loose, "strict": False}}}) == loose


# -- review: a schema the validator cannot apply is refused before anything is sent ----

@pytest.mark.parametrize("schema, why", [
    ({"$ref": "#"}, "leads back to itself"),
    ({"$ref": "#/$defs/a", "$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}}, "leads back"),
    ({"type": "string", "pattern": "("}, "not a regular expression"),
    ({"type": "object", "required": 5}, "required must be"),
    ({"type": "object", "properties": {"a": {"allOf": 5}}}, "allOf must be an array"),
    ({"type": "object", "properties": ["a"]}, "properties must be an object"),
    ({"type": "integer", "multipleOf": 0}, "multipleOf"),
    ({"type": "string", "maxLength": float("inf")}, "maxLength must be"),
    ({"type": "strnig"}, "type must be one of"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/none"}}}, "points at nothing"),
])
def test_a_schema_the_validator_cannot_apply_is_refused_up_front(schema, why):
    with pytest.raises(SchemaError, match=why):
        load_schema(json.dumps(schema))


def test_a_recursive_schema_that_descends_is_accepted_and_deep_nesting_refused():
    tree = {"type": "array", "items": {"$ref": "#"}}
    assert load_schema(json.dumps(tree)) == tree
    with pytest.raises(SchemaError, match="nested deeper"):
        load_schema("[" * 100_000 + "]" * 100_000)
    deep = '{"type": "object", "properties": {"a": ' * 300 + "{}" + "}}" * 300
    with pytest.raises(SchemaError, match="nested deeper"):
        load_schema(deep)


def test_a_hostile_reply_is_a_failed_validation_not_a_crash():
    tree = {"type": "array", "items": {"$ref": "#"}}
    for reply in ("[" * 400 + "]" * 400, "[" * 5000 + "]" * 5000):
        with pytest.raises(SchemaValidationError, match="nested too deeply"):
            parse_reply(reply, tree)
    with pytest.raises(SchemaValidationError, match="not a finite number"):
        parse_reply('{"a": 1e999}', {"type": "object",
                                     "properties": {"a": {"type": "number", "multipleOf": 2}}})


def test_chat_refuses_a_bad_schema_with_exit_2_and_sends_nothing(cli, server):
    before = server.stats()["total_requests"]
    for schema in ('{"$ref": "#"}', '{"type": "string", "pattern": "("}'):
        done = cli("chat", "--schema", schema, "hi")
        assert done.returncode == 2 and "please report" not in done.stderr, done.stderr
    assert server.stats()["total_requests"] == before


def test_a_bad_schema_on_one_batch_line_fails_that_line_only(cli, tmp_path):
    lines = [{"prompt": "one"}, {"prompt": "two", "schema": {"type": "string", "pattern": "("}},
             {"prompt": "three", "schema": {"$ref": "#"}}, {"prompt": "four"}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = cli("batch", str(src), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 7 and "please report" not in done.stderr, done.stderr
    records = [json.loads(r) for r in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["status"]) for r in records) == [
        ("1", "ok"), ("2", "error"), ("3", "error"), ("4", "ok")]


def test_max_time_bounds_the_command_with_its_schema_re_asks(api_env):
    """Six requests of 0.6 s each under --max-time 1: the command ends near 1 s, not
    after 3.6 s (the budget was per request)."""
    import time

    from llmcli.testing import MockOpenAIServer

    from .conftest import run_cli

    with MockOpenAIServer(latency_ms=600) as slow:
        env = dict(api_env, OPENAI_BASE_URL=slow.base_url)
        started = time.monotonic()
        done = run_cli("chat", "--max-time", "1", "--schema", SCHEMA_ARG, "--schema-retries", "5",
                       "slow #invalid-json:5", env=env)
        took = time.monotonic() - started
    assert done.returncode == 6, done.stderr
    assert "total time budget of 1s" in done.stderr and took < 2.5   # loaded machine: slack


def test_a_schema_file_without_end_is_refused_not_read_into_memory(cli):
    done = cli("chat", "--schema", "/dev/zero", "hi")
    assert done.returncode == 2 and "over 4 MB" in done.stderr, done.stderr


def test_the_up_front_check_stays_liberal():
    """Gemini's capital types and 10.0 for a length are taken, as before the check."""
    load_schema(json.dumps({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}))
    schema = load_schema(json.dumps({"type": "string", "maxLength": 3.0}))
    assert errors("abcd", schema) == ["$: 4 characters, more than maxLength 3"]
