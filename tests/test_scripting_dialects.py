"""--schema and --attach through every API dialect, end to end against the test
server's native APIs: the schema goes out in each API's own field, the parts in each
API's own blocks, and the reply comes back validated."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import API_KEY
from .test_attachments import PDF, PNG

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
          "required": ["n", "s"], "additionalProperties": False}
APIS = ("openai-chat", "openai-responses", "anthropic", "gemini")


def schema_sent(api: str, body: dict) -> dict:
    """Where each API carries the JSON Schema."""
    return {"openai-chat": lambda: body["response_format"]["json_schema"]["schema"],
            "openai-responses": lambda: body["text"]["format"]["schema"],
            "anthropic": lambda: body["output_config"]["format"]["schema"],
            "gemini": lambda: body["generationConfig"]["responseJsonSchema"]}[api]()


def media_sent(api: str, body: dict) -> list[tuple[str, bytes]]:
    """(MIME type or kind, bytes) of every image or document the request carries."""
    found = []
    text = json.dumps(body)
    for mime, magic in (("image/png", PNG), ("application/pdf", PDF)):
        if base64.b64encode(magic).decode() in text:
            found.append((mime, magic))
    return found


@pytest.fixture
def dialect(cli, api_env, server):
    def run(api: str, *args: str, **kwargs):
        base = server.base_url.replace("/v1", "/v1beta") if api == "gemini" else server.base_url
        env = dict(api_env, LLMCLI_API_KEY=API_KEY)
        return cli("--api", api, args[0], "--base-url", base, *args[1:], env=env, **kwargs)
    return run


def last_body(server, marker: str) -> dict:
    bodies = [r["body"] for r in server.stats()["requests"] if marker in json.dumps(r["body"])]
    assert bodies, marker
    return bodies[-1]


@pytest.mark.parametrize("api", APIS)
def test_schema_and_attachments_in_every_dialect(api, dialect, server, tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "d.pdf").write_bytes(PDF)
    (tmp_path / "n.txt").write_text("plain notes")
    marker = f"dialect-e2e-{api}"
    done = dialect(api, "chat", "--json", "--schema", json.dumps(SCHEMA), "-a", str(tmp_path / "a.png"),
                   "-a", str(tmp_path / "d.pdf"), "-a", str(tmp_path / "n.txt"), marker)
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["parsed"] == {"n": 0, "s": f'echo: {marker} <file name="n.txt"> plain notes </file>'}
    body = last_body(server, marker)
    assert schema_sent(api, body) == SCHEMA
    assert [m for m, _ in media_sent(api, body)] == ["image/png", "application/pdf"]


@pytest.mark.parametrize("api", APIS)
def test_invalid_replies_and_retries_in_every_dialect(api, dialect):
    bad = dialect(api, "chat", "--schema", json.dumps(SCHEMA), "x #invalid-json")
    assert bad.returncode == 8 and bad.stdout == ""
    fixed = dialect(api, "chat", "--schema", json.dumps(SCHEMA), "--schema-retries", "1",
                    "x #invalid-schema")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["n"] == 0
    streamed = dialect(api, "stream", "--json", "--schema", json.dumps(SCHEMA), "streamed")
    assert streamed.returncode == 0, streamed.stderr
    assert json.loads(streamed.stdout.splitlines()[-1])["parsed"]["n"] == 0


@pytest.mark.parametrize("api", ("anthropic", "gemini"))
def test_batch_schema_and_attachments_in_native_dialects(api, dialect, server, tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    lines = [{"id": "ok", "prompt": f"batch-{api}", "attachments": [str(tmp_path / "a.png")], "schema": SCHEMA},
             {"id": "bad", "prompt": "y #invalid-json:9", "schema": SCHEMA}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = dialect(api, "batch", str(src), "-q", "--max-tokens", "50")
    assert done.returncode == 7, done.stderr
    records = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert records["ok"]["parsed"]["n"] == 0
    assert records["bad"]["error"]["type"] == "schema_validation"
    assert media_sent(api, last_body(server, f"batch-{api}")) == [("image/png", PNG)]
