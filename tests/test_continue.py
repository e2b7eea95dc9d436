"""Habits from peers (issue 8, point 7): `chat --stream`, and `chat -c/--continue`
continuing the most recent conversation kept in the user's state dir."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from llmcli.testing import reply_for


def turn(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


def sent(server) -> list[dict[str, str]]:
    return server.stats()["requests"][-1]["body"]["messages"]


@pytest.fixture
def state_env(api_env, tmp_path) -> dict[str, str]:
    return dict(api_env, XDG_STATE_HOME=str(tmp_path / "state"))


def last_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_STATE_HOME"]) / "llmcli" / "last-conversation.json"


def test_continue_sends_the_last_conversation_then_the_new_prompt(cli, server, state_env):
    assert cli("chat", "What is 2+2", env=state_env).returncode == 0
    done = cli("chat", "-c", "and in French?", env=state_env)
    assert done.returncode == 0, done.stderr
    first = [turn("user", "What is 2+2"), turn("assistant", reply_for([turn("user", "What is 2+2")]))]
    assert sent(server) == first + [turn("user", "and in French?")]
    again = cli("stream", "--continue", "once more", env=state_env)
    assert again.returncode == 0
    assert len(sent(server)) == 5 and sent(server)[-1] == turn("user", "once more")
    kept = json.loads(last_file(state_env).read_text())
    assert len(kept) == 6 and kept[-1]["role"] == "assistant"
    assert stat.S_IMODE(last_file(state_env).stat().st_mode) == 0o600


def test_a_new_chat_starts_a_new_last_conversation(cli, server, state_env):
    cli("chat", "one", env=state_env)
    cli("chat", "two", env=state_env)
    cli("chat", "-c", "three", env=state_env)
    assert [m["content"] for m in sent(server) if m["role"] == "user"] == ["two", "three"]


def test_continue_with_a_system_prompt_keeps_one_system_message(cli, server, state_env):
    cli("chat", "-s", "be brief", "hi", env=state_env)
    cli("chat", "-c", "-s", "be briefer", "more", env=state_env)
    roles = [m["role"] for m in sent(server)]
    assert roles == ["system", "user", "assistant", "user"]
    assert sent(server)[0]["content"] == "be briefer"


def test_continue_with_nothing_kept_is_a_usage_error(cli, state_env):
    done = cli("chat", "-c", "hello?", env=state_env)
    assert done.returncode == 2 and "no conversation to continue yet" in done.stderr


def test_continue_needs_a_new_prompt(cli, server, state_env):
    cli("chat", "hi", env=state_env)
    before = server.stats()["total_requests"]
    done = cli("chat", "-c", env=state_env)
    assert done.returncode == 2 and server.stats()["total_requests"] == before


def test_continue_with_messages_or_conversation_is_a_usage_error(cli, state_env, tmp_path):
    history = tmp_path / "h.json"
    history.write_text("[]")
    for option in ("--messages", "--conversation"):
        done = cli("chat", "-c", option, str(history), "x", env=state_env)
        assert done.returncode == 2 and "not both" in done.stderr


def test_a_failed_turn_leaves_the_last_conversation_alone(cli, state_env):
    cli("chat", "kept", env=state_env)
    before = last_file(state_env).read_text()
    assert cli("chat", "-c", "boom #fault:400", env=state_env).returncode == 5
    assert last_file(state_env).read_text() == before


def test_keeping_can_be_turned_off_in_the_config(cli, state_env, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("keep_last_conversation: false\n")
    assert cli("--config", str(config), "chat", "secret", env=state_env).returncode == 0
    assert not last_file(state_env).exists()
    done = cli("--config", str(config), "chat", "-c", "more", env=state_env)
    assert done.returncode == 2


def test_chat_stream_is_stream(cli, state_env):
    plain = cli("stream", "#chunks:5 hi", env=state_env)
    alias = cli("chat", "--stream", "#chunks:5 hi", env=state_env)
    assert alias.returncode == 0 and alias.stdout == plain.stdout
    ndjson = cli("chat", "--stream", "--json", "#chunks:3 hi", env=state_env).stdout.splitlines()
    assert [json.loads(line)["type"] for line in ndjson] == ["delta"] * 3 + ["done"]


def test_continue_keeps_attachments_by_reference_and_reads_them_again(cli, server, state_env,
                                                                      tmp_path):
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert cli("chat", "-a", str(image), "what is this?", env=state_env).returncode == 0
    kept = last_file(state_env).read_text()
    assert "base64" not in kept and str(image) in kept     # a reference, not the bytes
    done = cli("chat", "-c", "and now?", env=state_env)
    assert done.returncode == 0, done.stderr
    first = sent(server)[0]["content"]
    assert any(p.get("type") == "image_url" and "base64" in p["image_url"]["url"]
               for p in first if isinstance(p, dict))
