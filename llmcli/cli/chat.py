"""`llmcli chat` and `llmcli stream`: one prompt in, one reply out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from . import common as c
from .errors import state
from .output import Out, dumps, warn
from .stdin import gather_prompt

PromptArg = Annotated[Optional[str], typer.Argument(help="The prompt; '-' reads it from stdin. Piped stdin is appended after it.", show_default=False)]
MessagesFile = Annotated[Optional[Path], typer.Option("--messages", help="JSON file with a list of messages to send before the prompt.", rich_help_panel="Request options")]
NoStdin = Annotated[bool, typer.Option("--no-stdin", help="Never read stdin, even when it is not a terminal.")]

CHAT_HELP = """Send a prompt and print the reply.

The prompt comes from PROMPT, from stdin when it is piped, or both (stdin is appended
after PROMPT): cat notes.txt | llmcli chat "summarize"."""

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
        json_out: c.JsonOut = False,
        no_stdin: NoStdin = False,
        profile: c.Profile = None,
        base_url: c.BaseUrl = None,
        timeout: c.Timeout = None,
        max_time: c.MaxTime = None,
        retries: c.Retries = None,
    ) -> None:
        state.json_errors = json_out
        settings = c.settings_for(profile=profile, base_url=base_url, model=model,
                                  timeout=timeout, max_time=max_time, retries=retries)
        text = gather_prompt(prompt, no_stdin=no_stdin, required=messages is None)
        body = build_body(settings, text, system, temperature, max_tokens, param, messages,
                          stream=stream)
        from ..core.client import Client

        with Client(c.client_options(settings)) as client:
            (print_stream if stream else print_chat)(client, body, json_out)

    return command


def build_body(settings: Any, text: Optional[str], system: Optional[str],
               temperature: Optional[float], max_tokens: Optional[int],
               param: Optional[list[str]], messages: Optional[Path], *,
               stream: bool = False) -> dict[str, Any]:
    """The request body from the prompt, the flags and the settings."""
    from ..core.chat import build_chat_body, messages_for

    history = c.load_messages(messages)
    system_prompt = system if system is not None else settings["system"]
    return build_chat_body(c.require_model(settings), messages_for(text, system_prompt, history),
                           c.request_params(settings, temperature, max_tokens, param),
                           stream=stream)


def chat_json(result: Any) -> dict[str, Any]:
    """The stable `chat --json` object (docs/output.md)."""
    return {"id": result.id, "model": result.model, "content": result.content,
            "finish_reason": result.finish_reason, "usage": result.usage,
            "request_id": result.request_id, "attempts": result.attempts, "raw": result.raw}


def print_chat(client: Any, body: dict[str, Any], json_out: bool) -> None:
    """Send one request; print the reply (or its JSON)."""
    result = client.chat(body)
    out = Out()
    if json_out:
        out.write(dumps(chat_json(result)) + "\n")
    else:
        out.write(result.content if result.content.endswith("\n") else result.content + "\n")
    out.flush()
    _warn_if_cut(result.finish_reason)


def print_stream(client: Any, body: dict[str, Any], json_out: bool) -> None:
    """Stream the reply to stdout, one flush per network read."""
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


def _warn_if_cut(finish_reason: Optional[str]) -> None:
    if finish_reason == "length":
        warn("the reply was cut short by the token limit (finish_reason: length)")


def register(app: typer.Typer) -> None:
    """Add `chat` and `stream` to the app."""
    app.command("chat", help=CHAT_HELP)(_command(stream=False))
    app.command("stream", help=STREAM_HELP)(_command(stream=True))
