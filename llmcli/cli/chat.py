"""`llmcli chat` and `llmcli stream`: one prompt in, one reply out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from . import common as c
from .env import current
from .errors import state
from .output import Out, dumps, warn
from .stdin import gather_prompt, stdin_is_tty

PromptArg = Annotated[Optional[str], typer.Argument(help="The prompt; '-' reads it from stdin. Piped stdin is appended after it.", show_default=False)]
MessagesFile = Annotated[Optional[Path], typer.Option("--messages", help="JSON file with a list of messages to send before the prompt.", rich_help_panel="Request options")]
NoStdin = Annotated[bool, typer.Option("--no-stdin", help="Never read stdin, even when it is not a terminal.")]
Interactive = Annotated[bool, typer.Option("-i", "--interactive", help="Chat in the terminal, turn after turn (the default with no prompt when stdin and stdout are terminals).")]
ConversationFile = Annotated[Optional[Path], typer.Option("--conversation", metavar="FILE", help="Continue the conversation in FILE (a JSON list of messages; created if missing) and append this turn to it.", rich_help_panel="Request options")]

CHAT_HELP = """Send a prompt and print the reply.

The prompt comes from PROMPT, from stdin when it is piped, or both (stdin is appended
after PROMPT): cat notes.txt | llmcli chat "summarize". With -i, or with no prompt at
a terminal, it is an interactive chat (/help lists its commands)."""

STREAM_HELP = """Send a prompt and print the reply as it is generated.

Each piece is written to stdout the moment it arrives. --json writes NDJSON: one
object per delta and a final one with finish_reason and usage."""


def _command(stream: bool) -> Callable[..., None]:
    """The chat and stream commands share every option: declare them once."""

    def command(
        prompt: PromptArg = None,
        system: c.System = None,
        model: c.Model = None,
        temperature: c.Temperature = None,
        max_tokens: c.MaxTokens = None,
        param: c.Params = None,
        messages: MessagesFile = None,
        conversation: ConversationFile = None,
        interactive: Interactive = False,
        json_out: c.JsonOut = False,
        no_stdin: NoStdin = False,
        profile: c.Profile = None,
        base_url: c.BaseUrl = None,
        timeout: c.Timeout = None,
        max_time: c.MaxTime = None,
        retries: c.Retries = None,
    ) -> None:
        state.json_errors = json_out
        if messages is not None and conversation is not None:
            raise typer.BadParameter("use --messages or --conversation, not both",
                                     param_hint="--conversation")
        settings = c.settings_for(profile=profile, base_url=base_url, model=model,
                                  timeout=timeout, max_time=max_time, retries=retries)
        from .conversation import conversation_lock

        with conversation_lock(conversation):   # one turn at a time on one file
            _turn(settings, stream, prompt, system, temperature, max_tokens, param, messages,
                  conversation, interactive, json_out, no_stdin)

    return command


def _turn(settings: Any, stream: bool, prompt: Optional[str], system: Optional[str],
          temperature: Optional[float], max_tokens: Optional[int], param: Optional[list[str]],
          messages: Optional[Path], conversation: Optional[Path], interactive: bool,
          json_out: bool, no_stdin: bool) -> None:
    """One chat or stream command, once ``conversation``'s lock is held."""
    history = load_history(messages, conversation)
    if conversation is not None:   # before sending: a paid reply must not be lost
        from .conversation import check_writable

        check_writable(conversation)
    if wants_interactive(interactive, prompt, messages, json_out):
        from .interactive import run_session

        run_session(settings, prompt, system, history, conversation,
                    c.request_params(settings, temperature, max_tokens, param))
        return
    text = gather_prompt(prompt, no_stdin=no_stdin, has_messages=bool(history))
    body = build_body(settings, text, system, temperature, max_tokens, param, history,
                      stream=stream)
    from ..core.client import Client

    with Client(c.client_options(settings)) as client:
        reply = (print_stream if stream else print_chat)(client, body, json_out)
    if conversation is not None:   # only a whole turn is written, never a cut one
        from .conversation import save_turn, with_reply

        save_turn(conversation, with_reply(body["messages"], reply))


def load_history(messages: Optional[Path], conversation: Optional[Path]) -> list[dict[str, Any]]:
    """The messages before the prompt: ``--conversation FILE``, else ``--messages FILE``."""
    if conversation is None:
        return c.load_messages(messages)
    from .conversation import load_conversation

    return load_conversation(conversation)


def wants_interactive(interactive: bool, prompt: Optional[str], messages: Optional[Path],
                      json_out: bool) -> bool:
    """``-i``, or nothing to send while a person sits at the terminal (stdin and
    stdout both terminals). Interactive mode never starts without a terminal."""
    if interactive:
        if json_out:
            raise typer.BadParameter("--interactive has no --json output", param_hint="--json")
        if not stdin_is_tty():
            raise typer.BadParameter("--interactive needs a terminal on stdin",
                                     param_hint="--interactive")
        return True
    return (prompt is None and messages is None and not json_out and stdin_is_tty()
            and current().stdout_isatty)


def build_body(settings: Any, text: Optional[str], system: Optional[str],
               temperature: Optional[float], max_tokens: Optional[int],
               param: Optional[list[str]], history: list[dict[str, Any]], *,
               stream: bool = False) -> dict[str, Any]:
    """The request body from the prompt, the messages before it (``--messages`` or
    ``--conversation``), the flags and the settings."""
    from ..core.chat import build_chat_body, messages_for

    system_prompt = system if system is not None else settings["system"]
    return build_chat_body(c.require_model(settings), messages_for(text, system_prompt, history),
                           c.request_params(settings, temperature, max_tokens, param),
                           stream=stream)


def chat_json(result: Any) -> dict[str, Any]:
    """The stable `chat --json` object (docs/output.md)."""
    return {"id": result.id, "model": result.model, "content": result.content,
            "finish_reason": result.finish_reason, "usage": result.usage,
            "request_id": result.request_id, "attempts": result.attempts, "raw": result.raw}


def print_chat(client: Any, body: dict[str, Any], json_out: bool) -> str:
    """Send one request; print the reply (or its JSON); return the reply's text."""
    result = client.chat(body)
    out = Out()
    if json_out:
        out.write(dumps(chat_json(result)) + "\n")
    else:
        out.write(result.content if result.content.endswith("\n") else result.content + "\n")
    out.flush()
    _warn_if_cut(result.finish_reason)
    return result.content


def print_stream(client: Any, body: dict[str, Any], json_out: bool) -> str:
    """Stream the reply to stdout, one flush per network read; return its text."""
    stream = client.stream_chat(body)
    out = Out()
    try:
        for batch in stream.batches():
            if json_out:
                out.write("".join(dumps({"type": "delta", "content": d}) + "\n" for d in batch))
            else:
                out.write("".join(batch))
            out.flush()
    finally:
        out.flush()   # Ctrl-C or an error keeps what was already printed
    if json_out:
        s = stream.state
        out.write(dumps({"type": "done", "id": s.id, "model": s.model,
                         "finish_reason": s.finish_reason, "usage": s.usage,
                         "request_id": s.request_id, "attempts": stream.attempts}) + "\n")
    else:
        out.write("\n")
    out.flush()
    _warn_if_cut(stream.state.finish_reason)
    return "".join(stream.state.parts)


def _warn_if_cut(finish_reason: Optional[str]) -> None:
    if finish_reason == "length":
        warn("the reply was cut short by the token limit (finish_reason: length)")


def register(app: typer.Typer) -> None:
    """Add `chat` and `stream` to the app."""
    app.command("chat", help=CHAT_HELP)(_command(stream=False))
    app.command("stream", help=STREAM_HELP)(_command(stream=True))
