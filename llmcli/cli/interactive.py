"""`llmcli chat -i`: a conversation in the terminal.

Replies stream in as they are generated and every turn is kept, so the model sees the
whole conversation. Ctrl-C cancels the reply being written (that turn is dropped) and
returns to the prompt; ``exit``, ``quit``, ``退出`` or Ctrl-D leave. Lines starting with
``/`` are commands (``/help``). Line editing and history come from the standard
library's readline, imported only here; the history file is in the user's state dir
(:func:`history_path`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

from ..config import Settings
from ..core.errors import LLMCLIError
from . import common as c
from .conversation import Messages, save_conversation, save_turn, with_reply
from .env import current
from .errors import report, safe
from .output import Out

PROMPT = "> "
EXIT_WORDS = frozenset({"exit", "quit", "退出", "/exit", "/quit"})
HISTORY_LENGTH = 1000

HELP = """\
Commands:
  /system TEXT   set the system prompt (/system alone shows it)
  /attach PATH   attach a file (image, PDF, text) or an image URL to the next message
  /model NAME    switch model (/model alone shows it)
  /reset         forget the conversation (the system prompt and model stay)
  /save FILE     write the conversation to FILE as JSON (usable with --conversation)
  /help          this help
  exit, quit, 退出 or Ctrl-D leave; Ctrl-C cancels the reply being written.
  Start a line with // to send a message that begins with /."""



def note(message: str) -> None:
    """A line for the person at the terminal, on stderr (stdout carries only replies)."""
    current().write_err(safe(f"llmcli: {message}") + "\n")
    current().stderr.flush()


class Session:
    """The state of one interactive chat: the messages so far, the model, the client."""

    def __init__(self, client: Any, model: str, params: dict[str, Any], messages: Messages,
                 conversation: Optional[Path] = None, refs: Optional[dict[int, Any]] = None,
                 limits: Optional[dict[str, int]] = None, settings: Any = None) -> None:
        self.client, self.model, self.params = client, model, params
        self.messages = messages
        self.conversation = conversation
        self.refs: dict[int, Any] = {} if refs is None else refs
        self.limits, self.settings = limits, settings
        self.pending: list[Any] = []      # /attach: attachments for the next turn
        self.commands: dict[str, Callable[[str], None]] = {
            "system": self.set_system, "model": self.set_model, "reset": self.reset,
            "save": self.save, "attach": self.attach, "help": lambda _arg: note(HELP)}

    def ask(self, text: str) -> None:
        """One turn: send the conversation and ``text``, stream the reply, keep both."""
        from ..core.chat import build_chat_body
        from .chat import print_stream

        from ..core.attachments import register, user_content

        content = user_content(text, self.pending)
        register(content, self.pending, self.refs)
        sent = [*self.messages, {"role": "user", "content": content}]
        body = build_chat_body(self.model, sent, self.params, stream=True)
        from .scripting import Run

        run = Run(self.settings, "interactive") if self.settings is not None else None
        try:
            reply = print_stream(self.client, body, False, run)
        except KeyboardInterrupt:
            Out().write("\n")   # end the cut reply's line
            Out().flush()
            note("reply cancelled; this turn is not kept")
            return
        except LLMCLIError as exc:
            if run is not None:
                run.failed(exc, body)
            report(exc)   # one line, as anywhere else; the session goes on
            return
        finally:
            if run is not None:
                run.finish()
        self.messages = with_reply(sent, reply)
        self.pending = []
        try:
            self.persist()
        except LLMCLIError as exc:   # saved aside, and said where: the session goes on
            report(exc)

    def attach(self, arg: str) -> None:
        """``/attach PATH|URL``: attach a file or URL to the next message."""
        from ..core.attachments import AttachmentError, load

        if not arg:
            shown = ", ".join(a.source for a in self.pending) or "none"
            note(f"usage: /attach PATH|URL (attached to the next message: {shown})")
            return
        try:
            found = load(str(Path(arg).expanduser()) if not arg.startswith("http") else arg,
                         limits=self.limits)
        except AttachmentError as exc:
            note(exc.message)
            return
        self.pending.append(found)
        note(f"attached {found.name} ({found.kind}) to the next message")

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the session should end."""
        text = line.strip()
        if text in EXIT_WORDS:
            return False
        if text.startswith("/") and not text.startswith("//"):
            name, _, arg = text[1:].partition(" ")
            command = self.commands.get(name)
            if command is None:
                note(f"unknown command /{name}; /help lists them")
            else:
                command(arg.strip())
        elif text:
            self.ask(text[1:] if text.startswith("//") else text)
        return True

    def set_system(self, text: str) -> None:
        """``/system TEXT``: replace (or add) the system message."""
        if not text:
            has = bool(self.messages) and self.messages[0].get("role") == "system"
            note(f"system prompt: {self.messages[0].get('content') if has else '(none)'}")
            return
        from ..core.chat import with_system

        self.messages = with_system(self.messages, text)
        note("system prompt set")
        self.persist()

    def set_model(self, name: str) -> None:
        """``/model NAME``: use another model from the next turn on."""
        if name:
            self.model = name
        note(f"model: {self.model}")

    def reset(self, _arg: str = "") -> None:
        """``/reset``: forget every turn; keep the system prompt."""
        self.messages = [m for m in self.messages[:1] if m.get("role") == "system"]
        note("conversation reset")
        self.persist()

    def save(self, arg: str) -> None:
        """``/save FILE``: write the conversation as a JSON list of messages."""
        if not arg:
            note("usage: /save FILE")
            return
        path = Path(arg).expanduser()
        try:
            save_conversation(path, self.messages, self.refs)
        except OSError as exc:
            note(f"cannot save to {path}: {exc.strerror or exc}")
            return
        note(f"saved {len(self.messages)} messages to {path}")

    def persist(self) -> None:
        """With ``--conversation``, the file follows every change."""
        if self.conversation is not None:
            save_turn(self.conversation, self.messages, self.refs)


def run_session(settings: Settings, prompt: Optional[str], system: Optional[str],
                history: Messages, conversation: Optional[Path],
                params: dict[str, Any], *, refs: Optional[dict[int, Any]] = None,
                attach: Optional[list[str]] = None) -> None:
    """The interactive loop, until exit or Ctrl-D. ``history`` is the conversation so
    far (``--conversation`` or ``--messages``); ``prompt``, if any, is the first turn."""
    from ..core.chat import messages_for
    from ..core.client import Client

    model = c.require_model(settings)
    system_prompt = system if system is not None else settings["system"]
    messages = messages_for(None, system_prompt, history)
    history_file = history_path()
    editing = setup_readline(history_file)
    with Client(c.client_options(settings)) as client:
        from .scripting import limits_for, read_attachments

        session = Session(client, model, params, messages, conversation, refs,
                          limits_for(settings), settings)
        session.pending = read_attachments(attach, settings) if attach else []
        turns = sum(1 for m in messages if m.get("role") == "user")
        note(f"chatting with {model}" + (f", {turns} earlier turns" if turns else "")
             + "; /help for commands, exit or Ctrl-D to leave")
        try:
            if prompt:
                session.ask(prompt)
            while (line := read_line(PROMPT)) is not None and session.handle(line):
                pass
        finally:
            if editing:
                save_history(history_file)


def read_line(prompt: str) -> Optional[str]:
    """One line from the terminal; None on Ctrl-D. Ctrl-C at the prompt starts a
    fresh line, as in a shell, rather than ending the session. With stdout redirected
    (``chat -i > log``) the prompt goes to stderr, so the file gets only replies."""
    to_stdout = current().stdout_isatty
    while True:
        try:
            if to_stdout:
                return input(prompt)   # readline draws the prompt and edits the line
            current().write_err(prompt)
            current().stderr.flush()
            return input()
        except KeyboardInterrupt:
            current().write_err("\n")
        except EOFError:
            current().write_err("\n")
            return None


def history_path() -> Optional[Path]:
    """Where the line history lives: ``$LLMCLI_HISTORY`` (empty: no history), else the
    user's state dir: ``$XDG_STATE_HOME/llmcli/history`` (``~/.local/state/...``),
    ``~/Library/Application Support/llmcli/history`` on macOS,
    ``%LOCALAPPDATA%\\llmcli\\history`` on Windows."""
    override = current().environ.get("LLMCLI_HISTORY")
    if override is not None:
        return Path(override).expanduser() if override else None
    from .last import state_dir

    return state_dir() / "history"


def setup_readline(path: Optional[Path]) -> bool:
    """Turn on line editing and load the history; False where readline is missing."""
    try:
        import readline
    except ImportError:   # Windows without a readline port: plain input() still works
        return False
    readline.set_history_length(HISTORY_LENGTH)
    if path is not None:
        try:
            readline.read_history_file(path)
        except OSError:
            pass   # no history yet, or unreadable: start without it
    return True


def save_history(path: Optional[Path]) -> None:
    """Write the history, private to the user: prompts can hold anything."""
    if path is None:
        return
    import readline

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        readline.write_history_file(path)
        os.chmod(path, 0o600)
    except OSError as exc:
        note(f"cannot write the history to {path}: {exc.strerror or exc}")
