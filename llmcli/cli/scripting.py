"""What `chat` and `stream` add for scripts: --schema, --attach, cost and the usage log.

Kept out of chat.py so that the common path (`llmcli chat hello`) imports none of it
but this module: the schema validator, the attachment reader, the price table and
sqlite3 are imported only when their flag is given, or after the reply is printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Optional

import typer

from ..core.errors import APIError, LLMCLIError, error_kind
from .output import warn

_REQ = "Request options"
Schema = Annotated[Optional[str], typer.Option("--schema", metavar="SCHEMA", help="A JSON Schema (file, or inline JSON) the reply must match: asked for as structured output and checked here. Prints the JSON; --json adds `parsed`.", rich_help_panel=_REQ)]
SchemaRetries = Annotated[int, typer.Option("--schema-retries", min=0, metavar="N", help="Ask again, up to N times, when the reply does not match --schema.", rich_help_panel=_REQ)]
Attach = Annotated[Optional[list[str]], typer.Option("-a", "--attach", metavar="PATH|URL", help="Attach an image (PNG, JPEG, WebP, GIF), a PDF, a text file, an image URL, or '-' (stdin); repeatable.", rich_help_panel=_REQ)]


MAX_SCHEMA_BYTES = 4 * 2**20    # structured-output APIs take schemas of kilobytes


class Asks:
    """What `chat`/`stream` were asked for beyond a plain prompt."""

    __slots__ = ("schema", "retries", "attach")

    def __init__(self, schema: Optional[str], retries: int, attach: list[str]) -> None:
        self.schema, self.retries, self.attach = schema, retries, attach


def read_schema(value: str) -> dict[str, Any]:
    """``--schema``: inline JSON (it starts with ``{``), else a file to read."""
    from ..core.schema import SchemaError, load_schema

    if value.lstrip().startswith("{"):
        text, source = value, "--schema"
    else:
        try:
            with open(value, "rb") as f:     # bounded: --schema /dev/zero must not eat memory
                data = f.read(MAX_SCHEMA_BYTES + 1)
            if len(data) > MAX_SCHEMA_BYTES:
                raise typer.BadParameter(f"{value} is over {MAX_SCHEMA_BYTES // 2**20} MB: not "
                                         "a JSON Schema", param_hint="--schema")
            text, source = data.decode("utf-8"), value
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise typer.BadParameter(f"cannot read {value}: {reason}", param_hint="--schema")
    try:
        return load_schema(text, source)
    except SchemaError as exc:
        raise typer.BadParameter(exc.message, param_hint="--schema") from None


def limits_for(settings: Any) -> dict[str, int]:
    """The attachment limits of the profile's API (docs/usage.md#attachments)."""
    from ..core.attachments import LIMITS

    return LIMITS.get(str(settings.values.get("api") or ""), LIMITS["default"])


def read_attachments(specs: list[str], settings: Any, stdin: Optional[BinaryIO] = None) -> list[Any]:
    """Every ``--attach``, read and checked before anything is sent."""
    from ..core.attachments import AttachmentError, load_all

    if "-" in specs and stdin is None:
        from .env import current

        stdin = current().stdin_bytes
    try:
        return load_all(specs, stdin, limits=limits_for(settings))
    except AttachmentError as exc:
        raise typer.BadParameter(exc.message, param_hint="--attach") from None


def shape_body(body: dict[str, Any], text: Optional[str], attachments: list[Any],
               schema: Optional[dict[str, Any]], refs: dict[int, Any]) -> dict[str, Any]:
    """The request with the attachments in the prompt's message and the schema as
    ``response_format``; ``refs`` learns the attachment parts (for --conversation)."""
    if attachments:
        from ..core import attachments as att

        content = att.user_content(text, attachments)
        messages = list(body["messages"])
        if text is not None and messages and messages[-1].get("role") == "user":
            messages[-1] = {"role": "user", "content": content}
        else:
            messages.append({"role": "user", "content": content})
        att.register(content, attachments, refs)
        body = {**body, "messages": messages}
    if schema is not None:
        from ..core.schema import response_format

        body = {**body, "response_format": response_format(schema)}
    return body


class Run:
    """One command's requests: schema checks and re-asks, cost, and the usage rows,
    written after the reply is out."""

    def __init__(self, settings: Any, command: str, schema: Optional[dict[str, Any]] = None,
                 retries: int = 0) -> None:
        self.settings, self.command, self.schema, self.retries = settings, command, schema, retries
        self.cost: Optional[float] = 0.0
        self.parsed: Any = None
        self._rows: list[tuple[Any, ...]] = []
        self._prices: Any = None
        self._started = time.monotonic()

    def chat(self, client: Any, body: dict[str, Any]) -> Any:
        """Send ``body``; with a schema, check the reply and ask again as allowed.
        ``--max-time`` bounds the command, re-asks included, not each request."""
        from ..core.retry import Deadline

        deadline = Deadline(client.options.max_time)
        for number in range(1, self.retries + 2):
            self._started = time.monotonic()
            result = self._send(client, body, deadline if number > 1 else None)
            self.done(result, body)
            if self.schema is None:
                return result
            try:
                self.parsed = self.check(result.content, number, result.request_id)
                return result
            except APIError as exc:
                if number > self.retries:
                    raise
                from ..core.schema import reask

                warn(f"the reply does not match --schema ({'; '.join(exc.errors)}); "  # type: ignore[attr-defined]
                     f"asking again ({number}/{self.retries})")
                body = reask(body, exc)  # type: ignore[arg-type]
        raise AssertionError("unreachable")

    @staticmethod
    def _send(client: Any, body: dict[str, Any], deadline: Any) -> Any:
        """``client.chat``; a re-ask gets only what is left of the command's budget."""
        if deadline is None or not deadline.seconds:
            return client.chat(body)
        from dataclasses import replace

        from ..core.errors import APITimeoutError

        deadline.check()
        whole = client.options
        client.options = replace(whole, max_time=deadline.remaining())
        try:
            return client.chat(body)
        except APITimeoutError:
            if deadline.remaining() < 0.05:   # the budget, not a --timeout: name the whole of it
                raise APITimeoutError(f"gave up after the total time budget of "
                                      f"{deadline.shown()}") from None
            raise
        finally:
            client.options = whole

    def check(self, content: str, attempts: int = 1, request_id: Optional[str] = None) -> Any:
        """The reply parsed and validated against the schema."""
        from ..core.schema import parse_reply

        assert self.schema is not None
        return parse_reply(content, self.schema, attempts, request_id)

    def prices(self) -> Any:
        """The price table with the config's ``prices:``, loaded once."""
        if self._prices is None:
            from ..core.errors import ConfigError
            from ..usage.prices import PriceError, load_table

            try:
                self._prices = load_table(self.settings["prices"])
            except PriceError as exc:
                raise ConfigError(str(exc), key="prices") from None
        return self._prices

    def done(self, result: Any, body: dict[str, Any]) -> None:
        """Count one finished request: its cost, and its row for the usage log."""
        model = result.model or body.get("model")
        cost = self.prices().cost(model, result.usage)
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        usage = result.usage if isinstance(result.usage, dict) else {}
        self._row(model=model, status="ok", cost=cost, request_id=result.request_id,
                  attempts=result.attempts, prompt_tokens=usage.get("prompt_tokens"),
                  completion_tokens=usage.get("completion_tokens"),
                  cached_tokens=_cached(usage), body=body, reply=result.content)

    def failed(self, exc: LLMCLIError, body: Optional[dict[str, Any]]) -> None:
        """Count a request that failed (its row says why; it cost nothing known)."""
        if not isinstance(exc, APIError) or exc.code == "schema_mismatch":
            return     # not a request (bad flags), or already counted as a reply
        self._row(model=(body or {}).get("model"), status=error_kind(exc), error=exc.message,
                  request_id=exc.request_id, body=body)

    def _row(self, *, body: Optional[dict[str, Any]], reply: Optional[str] = None,
             **fields: Any) -> None:
        from .errors import safe

        values = self.settings.values
        if not values.get("log", True):
            return
        if values.get("log_content"):
            fields["prompt"] = safe(json.dumps((body or {}).get("messages"), ensure_ascii=False))
            fields["reply"] = safe(reply) if reply is not None else None
        if fields.get("error"):
            fields["error"] = safe(fields["error"])
        self._rows.append((time.time(), int((time.monotonic() - self._started) * 1000), fields))

    def fields(self) -> dict[str, Any]:
        """What `--json` gains: ``cost`` always, ``parsed`` with a schema."""
        cost = None if self.cost is None else round(self.cost, 10)
        return {"cost": cost, **({"parsed": self.parsed} if self.schema is not None else {})}

    def finish(self) -> None:
        """Write the usage rows (one transaction); a failure is one warning."""
        if not self._rows:
            return
        from ..usage import log

        rows = [log.row(ts=ts, latency_ms=latency, command=self.command,
                        profile=self.settings.profile, **fields)
                for ts, latency, fields in self._rows]
        self._rows = []
        try:
            log.write(log.db_path(self.settings.environ), rows)
        except Exception as exc:   # sqlite3.Error, OSError: the reply is out already
            warn(f"cannot write the usage log: {exc}")


def _cached(usage: dict[str, Any]) -> Optional[int]:
    from ..usage.prices import cached_tokens

    return cached_tokens(usage) if usage else None
