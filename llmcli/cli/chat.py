"""`llmcli chat` and `llmcli stream`: one prompt in, one reply out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from . import common as c
from . import scripting as sc
from .env import current
from .errors import state
from .output import Out, dumps, warn
from .stdin import check_prompt, gather_prompt, stdin_is_tty

PromptArg = Annotated[Optional[str], typer.Argument(show_default=False)]   # help: cli/helptext.py
MessagesFile = Annotated[Optional[Path], typer.Option("--messages", metavar="FILE", help="JSON file with a list of messages to send before the prompt.", rich_help_panel="Request options")]
NoStdin = Annotated[bool, typer.Option("--no-stdin", help="Never read stdin, even when it is not a terminal.")]
Interactive = Annotated[bool, typer.Option("-i", "--interactive", help="Chat in the terminal, turn after turn (the default with no prompt when stdin and stdout are terminals).")]
Continue = Annotated[bool, typer.Option("-c", "--continue", help="Continue the most recent conversation (kept in the user's state dir; keep_last_conversation: false in the config turns keeping off).", rich_help_panel="Request options")]
StreamFlag = Annotated[bool, typer.Option("--stream", help="Print the reply as it is generated: llmcli chat --stream is llmcli stream.")]
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
        continue_last: Continue = False,
        stream_flag: StreamFlag = False,
        json_out: c.JsonOut = False,
        no_stdin: NoStdin = False,
        profile: c.Profile = None,
        base_url: c.BaseUrl = None,
        timeout: c.Timeout = None,
        max_time: c.MaxTime = None,
        retries: c.Retries = None,
        schema: sc.Schema = None,
        schema_retries: sc.SchemaRetries = 0,
        attach: sc.Attach = None,
    ) -> None:
        state.json_errors = json_out
        streaming = stream or stream_flag
        one_history_source(messages, conversation, continue_last)
        if streaming and schema_retries:
            raise typer.BadParameter("`stream` cannot take back what it printed: use "
                                     "`chat --schema-retries`", param_hint="--schema-retries")
        settings = c.settings_for(profile=profile, base_url=base_url, model=model,
                                  timeout=timeout, max_time=max_time, retries=retries)
        from .conversation import conversation_lock

        with conversation_lock(conversation):   # one turn at a time on one file
            _turn(settings, streaming, prompt, system, temperature, max_tokens, param,
                  messages, conversation, interactive, json_out, no_stdin,
                  sc.Asks(schema, schema_retries, attach or []), continue_last)

    return command


def _turn(settings: Any, stream: bool, prompt: Optional[str], system: Optional[str],
          temperature: Optional[float], max_tokens: Optional[int], param: Optional[list[str]],
          messages: Optional[Path], conversation: Optional[Path], interactive: bool,
          json_out: bool, no_stdin: bool, asks: sc.Asks, continue_last: bool = False) -> None:
    """One chat or stream command, once ``conversation``'s lock is held."""
    check_prompt(prompt)
    refs: dict[int, Any] = {}     # attachment parts, kept by reference in the conversation
    history = load_history(messages, conversation, refs, continue_last)
    if conversation is not None:   # before sending: a paid reply must not be lost
        from .conversation import check_writable

        check_writable(conversation)
    if wants_interactive(interactive, prompt, messages, json_out):
        from .interactive import run_session

        run_session(settings, prompt, system, history, conversation,
                    c.request_params(settings, temperature, max_tokens, param),
                    refs=refs, attach=asks.attach)
        return
    schema = sc.read_schema(asks.schema) if asks.schema is not None else None
    if prompt == "-" and "-" in asks.attach:
        raise typer.BadParameter("PROMPT '-' and -a - both read stdin, which can be read "
                                 "only once", param_hint="PROMPT")
    attachments = sc.read_attachments(asks.attach, settings) if asks.attach else []
    # -c needs a new prompt (or attachments): the kept conversation ends with a reply
    text = gather_prompt(prompt, no_stdin=no_stdin or "-" in asks.attach,
                         has_messages=(bool(history) and not continue_last) or bool(attachments),
                         max_time=settings["max_time"] or None)
    body = build_body(settings, text, system, temperature, max_tokens, param, history,
                      stream=stream)
    body = sc.shape_body(body, text, attachments, schema, refs)
    run = sc.Run(settings, "stream" if stream else "chat", schema, asks.retries)
    from ..core.client import Client
    from ..core.errors import LLMCLIError

    try:
        with Client(c.client_options(settings)) as client:
            reply = (print_stream if stream else print_chat)(client, body, json_out, run)
    except LLMCLIError as exc:
        run.failed(exc, body)
        raise
    finally:
        run.finish()
    keep_turn(body["messages"], reply, conversation, refs, settings["keep_last_conversation"])


def one_history_source(messages: Optional[Path], conversation: Optional[Path],
                       continue_last: bool) -> None:
    """``--messages``, ``--conversation`` and ``-c`` each say what comes before the
    prompt: at most one of them."""
    given = [name for name, on in (("--messages", messages is not None),
                                   ("--conversation", conversation is not None),
                                   ("--continue", continue_last)) if on]
    if len(given) > 1:
        raise typer.BadParameter(f"use {given[0]} or {given[1]}, not both",
                                 param_hint=given[1])


def keep_turn(sent: list[dict[str, Any]], reply: str, conversation: Optional[Path],
              refs: dict[int, Any], keep_last: Optional[bool]) -> None:
    """After a whole reply (never a cut one): append the turn to ``--conversation
    FILE``, and keep it as the most recent conversation for ``-c``."""
    from .conversation import save_turn, with_reply
    from .last import save_last

    turn = with_reply(sent, reply)
    save_last(turn, keep_last, refs)   # never raises: first, so a failed save_turn keeps it
    if conversation is not None:
        save_turn(conversation, turn, refs)


def load_history(messages: Optional[Path], conversation: Optional[Path],
                 refs: Optional[dict[int, Any]] = None,
                 continue_last: bool = False) -> list[dict[str, Any]]:
    """The messages before the prompt: the most recent conversation (``-c``), else
    ``--conversation FILE``, else ``--messages FILE`` (``refs`` learns the attachments
    of a kept conversation, kept by reference)."""
    if continue_last:
        from .last import load_last

        return load_last(refs)
    if conversation is None:
        return c.load_messages(messages)
    from .conversation import load_conversation

    return load_conversation(conversation, refs)


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


def print_chat(client: Any, body: dict[str, Any], json_out: bool,
               run: Optional[sc.Run] = None) -> str:
    """Send one request; print the reply (or its JSON); return the reply's text."""
    result = run.chat(client, body) if run else client.chat(body)
    out = Out()
    if json_out:
        out.write(dumps({**chat_json(result), **(run.fields() if run else {})}) + "\n")
    elif run is not None and run.schema is not None:
        import json

        out.write(json.dumps(run.parsed, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(result.content if result.content.endswith("\n") else result.content + "\n")
    out.flush()
    _warn_if_cut(result.finish_reason)
    return result.content


def print_stream(client: Any, body: dict[str, Any], json_out: bool,
                 run: Optional[sc.Run] = None) -> str:
    """Stream the reply to stdout, one flush per network read; return its text. With a
    --schema the whole reply is checked once it has ended."""
    stream = client.stream_chat(body)
    out = Out()
    try:
        for batch in stream.batches():
            if json_out:
                out.write("".join(dumps({"type": "delta", "content": d}) + "\n" for d in batch))
            else:
                out.write("".join(batch))
            out.flush()
    except Exception:
        _end_line_on_terminal(out, stream.state.parts, json_out)
        raise
    finally:
        out.flush()   # Ctrl-C or an error keeps what was already printed
    s = stream.state
    if run is not None:
        run.done(s.result(stream.attempts), body)
        if run.schema is not None:
            out.write("" if json_out else "\n")
            out.flush()
            run.parsed = run.check("".join(s.parts), 1, s.request_id)
    if json_out:
        out.write(dumps({"type": "done", "id": s.id, "model": s.model,
                         "finish_reason": s.finish_reason, "usage": s.usage,
                         "request_id": s.request_id, "attempts": stream.attempts,
                         **(run.fields() if run else {})}) + "\n")
    elif run is None or run.schema is None:
        out.write("\n")
    out.flush()
    _warn_if_cut(stream.state.finish_reason)
    return "".join(stream.state.parts)


def _end_line_on_terminal(out: Out, parts: list[str], json_out: bool) -> None:
    """Before an error line, end a half-written reply's line, so that the error starts
    a line of its own, on a terminal only: in a pipe, stdout is data and stays as sent."""
    if not json_out and parts and not parts[-1].endswith("\n") and current().stdout_isatty:
        out.write("\n")


def _warn_if_cut(finish_reason: Optional[str]) -> None:
    if finish_reason == "length":
        warn("the reply was cut short by the token limit (finish_reason: length)")


def register(app: typer.Typer) -> None:
    """Add `chat` and `stream` to the app."""
    from .helptext import command_settings

    app.command("chat", **command_settings(help=CHAT_HELP))(_command(stream=False))
    app.command("stream", **command_settings(help=STREAM_HELP))(_command(stream=True))
