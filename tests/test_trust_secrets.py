"""Issue 11, point 6: secrets are masked by one rule everywhere llmcli prints or
stores what it received, and data that merely contains a short key's text is never
altered."""

from __future__ import annotations

import json
import os

import pytest



from .canned_server import JSON, SSE, CannedServer, completion
from .conftest import run_cli

LONG_KEY = "sk-proj-Secret0123456789WXYZ"


def env_for(url: str, key: str) -> dict[str, str]:
    return dict(os.environ, OPENAI_BASE_URL=url, OPENAI_API_KEY=key, LLMCLI_MODEL="test-model")


def test_a_short_key_never_rewrites_batch_results(tmp_path) -> None:
    reply = completion("this is a test of the test key", model="test-model-2024")
    prompts = tmp_path / "p.txt"
    prompts.write_text("say test\n")
    out = tmp_path / "out.jsonl"
    with CannedServer(lambda _: (200, JSON, reply)) as url:
        done = run_cli("batch", str(prompts), "-o", str(out), "-q", env=env_for(url, "test"))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["content"] == "this is a test of the test key"
    assert record["model"] == "test-model-2024"


@pytest.mark.parametrize("command", ["chat", "stream"])
def test_a_short_key_never_rewrites_a_reply(command: str) -> None:
    with CannedServer(lambda _: (200, JSON, completion("a test"))) as url:
        done = run_cli(command, "hi", env=env_for(url, "test"))
    assert (done.returncode, done.stdout) == (0, "a test\n"), done.stderr


def test_redact_masks_only_secrets_long_enough() -> None:
    from llmcli.core.options import redact

    assert redact("a test, EMPTY, ollama", ["test", "EMPTY", "ollama"]) == "a test, EMPTY, ollama"
    assert redact(f"key {LONG_KEY}!", [LONG_KEY]) == "key sk-...WXYZ!"


def test_chat_masks_a_key_the_model_echoes_in_the_reply_and_json(tmp_path) -> None:
    with CannedServer(lambda _: (200, JSON, completion(f"your key is {LONG_KEY}."))) as url:
        plain = run_cli("chat", "hi", env=env_for(url, LONG_KEY))
        as_json = run_cli("chat", "hi", "--json", env=env_for(url, LONG_KEY))
        conv = tmp_path / "conv.json"
        saved = run_cli("chat", "hi", "--conversation", str(conv), env=env_for(url, LONG_KEY))
    assert plain.stdout == "your key is sk-...WXYZ.\n"
    assert LONG_KEY not in as_json.stdout and "sk-...WXYZ" in json.loads(as_json.stdout)["content"]
    assert saved.returncode == 0 and LONG_KEY not in conv.read_text()
    assert json.loads(conv.read_text())[-1]["content"] == "your key is sk-...WXYZ."


def sse(deltas: list[str]) -> bytes:
    events = [{"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": d},
                                                     "finish_reason": None}]} for d in deltas]
    events.append({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {},
                                                         "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def test_stream_masks_a_key_echoed_across_many_deltas(tmp_path) -> None:
    pieces = ["key: ", LONG_KEY[:5], LONG_KEY[5:12], LONG_KEY[12:], " end, and sk-pr", "o ok"]
    conv = tmp_path / "conv.json"
    with CannedServer(lambda _: (200, SSE, sse(pieces))) as url:
        done = run_cli("stream", "hi", "--conversation", str(conv), env=env_for(url, LONG_KEY))
        as_json = run_cli("stream", "hi", "--json", env=env_for(url, LONG_KEY))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "key: sk-...WXYZ end, and sk-pro ok\n"
    assert json.loads(conv.read_text())[-1]["content"] == "key: sk-...WXYZ end, and sk-pro ok"
    assert LONG_KEY not in as_json.stdout and LONG_KEY[:12] not in as_json.stdout


def test_stream_mask_holds_back_only_what_may_be_a_key() -> None:
    from llmcli.core.options import StreamMask

    mask = StreamMask([LONG_KEY])
    assert mask.feed("hello ") == "hello "           # nothing held: no start of a key
    assert mask.feed("and sk-p") == "and "           # may be the key: held
    assert mask.feed("ython") == "sk-python"         # was not
    assert mask.feed(LONG_KEY[:9]) == "" and mask.feed(LONG_KEY[9:]) == "sk-...WXYZ"
    assert mask.feed("sk-pr") == "" and mask.flush() == "sk-pr"


def test_base_url_credentials_are_masked_in_errors_verbose_and_config_show(tmp_path) -> None:
    url = "http://alice:pw@127.0.0.1:9/v1"         # a short password: masked by its place
    env = dict(os.environ, OPENAI_API_KEY=LONG_KEY, OPENAI_BASE_URL=url, LLMCLI_MODEL="m")
    failed = run_cli("-v", "chat", "hi", "--retries", "0", env=env)
    assert failed.returncode == 6
    assert "alice:***@127.0.0.1" in failed.stderr and ":pw@" not in failed.stderr
    shown = run_cli("config", "show", env=env)
    shown_json = run_cli("config", "show", "--json", env=env)
    assert "alice:***@127.0.0.1" in shown.stdout and ":pw@" not in shown.stdout
    settings = json.loads(shown_json.stdout)["settings"]
    assert settings["base_url"]["value"] == "http://alice:***@127.0.0.1:9/v1"


def test_a_config_file_with_a_key_readable_by_others_gets_one_warning(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"api_key: {LONG_KEY}\nmodel: m\n")
    env = dict(os.environ, LLMCLI_CONFIG=str(config))
    config.chmod(0o644)
    loose = run_cli("config", "show", env=env)
    config.chmod(0o600)
    tight = run_cli("config", "show", env=env)
    assert loose.returncode == tight.returncode == 0
    warnings = [line for line in loose.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "chmod 600" in warnings[0] and LONG_KEY not in loose.stderr
    assert tight.stderr == ""


def test_interactive_chat_masks_a_key_the_model_echoes(api_env, tmp_path) -> None:
    """`chat -i` on a real pty: the test server echoes the prompt, so a prompt holding
    the key gets a reply holding it, streamed in pieces; the screen and the saved
    conversation show it masked."""
    from .conftest import API_KEY, ROOT
    from .pty_helper import Terminal, llmcli_argv, terminal_env

    conv = tmp_path / "conv.json"
    env = terminal_env(api_env, LLMCLI_HISTORY="")
    term = Terminal(llmcli_argv("chat", "-i", "--conversation", str(conv)), env, cwd=str(ROOT))
    try:
        term.expect("> ")
        term.send(f"my key is {API_KEY}\r")
        shown = term.expect("> ")
        term.send("exit\r")
        assert term.wait() == 0
    finally:
        term.close()
    reply = shown.split("\n", 1)[1]           # what came after the echo of the typed line
    assert "sk-...WXYZ" in reply and API_KEY not in reply
    assert API_KEY not in json.loads(conv.read_text())[-1]["content"]
