"""`llmcli chat -i` in a real pseudo-terminal against the test server: what a person
types, with readline, Ctrl-C and Ctrl-D as the terminal driver delivers them."""

from __future__ import annotations

import json

import pytest

from llmcli.testing import reply_for

from .conftest import ROOT
from .pty_helper import Terminal, llmcli_argv, terminal_env

PROMPT = "> "


def turn(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


def last_messages(server) -> list[dict[str, str]]:
    return server.stats()["requests"][-1]["body"]["messages"]


@pytest.fixture
def chat_i(api_env, tmp_path):
    """Start ``llmcli chat -i ARGS`` on a pty; closed (killed if need be) afterwards."""
    started: list[Terminal] = []

    def start(*args: str, **env: str) -> Terminal:
        environ = terminal_env(api_env, LLMCLI_HISTORY=str(tmp_path / "history"), **env)
        term = Terminal(llmcli_argv("chat", *args), environ, cwd=str(ROOT))
        started.append(term)
        term.expect("chatting with")
        term.expect(PROMPT)
        return term

    yield start
    for term in started:
        term.close()


def say(term: Terminal, text: str) -> str:
    """Type a line and return what was shown before the next prompt."""
    term.send(text + "\r")
    term.expect(text)          # the terminal's echo of what was typed
    return term.expect(PROMPT)


def test_multi_turn_ctrl_c_and_save(chat_i, server, tmp_path):
    term = chat_i("-i")
    assert reply_for([turn("user", "first question")]) in say(term, "first question")
    first = [turn("user", "first question"), turn("assistant", "echo: first question")]
    assert "echo: second" in say(term, "second")
    assert last_messages(server) == first + [turn("user", "second")]

    term.send("#chunks:100 #interval:50 slow\r")
    term.expect("w2 ")                       # the reply is being written...
    term.send("\x03")                        # ...and Ctrl-C cancels it
    term.expect("reply cancelled")
    term.expect(PROMPT)

    assert "echo: after" in say(term, "after")   # the session is alive,
    both = first + [turn("user", "second"), turn("assistant", "echo: second")]
    assert last_messages(server) == both + [turn("user", "after")]   # without the cut turn

    saved = tmp_path / "saved.json"
    assert "saved 6 messages" in say(term, f"/save {saved}")
    assert json.loads(saved.read_text()) == both + [turn("user", "after"),
                                                    turn("assistant", "echo: after")]
    term.send("exit\r")
    assert term.wait() == 0
    assert "first question" in (tmp_path / "history").read_text()   # readline history


def test_slash_commands_change_the_next_request(chat_i, server):
    term = chat_i("-i", "-m", "test-model")
    assert "system prompt set" in say(term, "/system be brief")
    assert "model: test-model-large" in say(term, "/model test-model-large")
    say(term, "one")
    body = server.stats()["requests"][-1]["body"]
    assert body["model"] == "test-model-large"
    assert body["messages"] == [turn("system", "be brief"), turn("user", "one")]
    assert "conversation reset" in say(term, "/reset")
    say(term, "two")
    assert last_messages(server) == [turn("system", "be brief"), turn("user", "two")]
    assert "/model NAME" in say(term, "/help")
    assert "unknown command /nope" in say(term, "/nope")
    term.send("退出\r")
    assert term.wait() == 0


def test_ctrl_d_leaves_and_conversation_file_follows_the_session(chat_i, server, tmp_path):
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps([turn("user", "old"), turn("assistant", "echo: old")]))
    term = chat_i("--conversation", str(conv))   # no prompt on a terminal: interactive
    say(term, "new")
    assert last_messages(server) == [turn("user", "old"), turn("assistant", "echo: old"),
                                      turn("user", "new")]
    assert json.loads(conv.read_text())[-1] == turn("assistant", "echo: new")
    term.send("\x04")                        # Ctrl-D
    assert term.wait() == 0


def test_interactive_refuses_without_a_terminal(cli):
    done = cli("chat", "-i", input="hello\n")
    assert done.returncode == 2 and "needs a terminal" in done.stderr
    assert cli("chat", "-i", "--json", input="").returncode == 2
