"""Options shared by several commands, declared once, and the helpers behind them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import Settings, load_settings
from ..core.errors import ConfigError
from .env import current
from .errors import add_secret

_REQ = "Request options"
_CONN = "Connection options"


def finite(value: Optional[float]) -> Optional[float]:
    """Refuse ``inf`` and ``nan``, which Click's float type accepts: no time limit or
    temperature means anything with them (``--max-time 0`` is "no limit")."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


Model = Annotated[Optional[str], typer.Option("-m", "--model", metavar="NAME", help="Model id.", show_default="gpt-4o-mini, or the config's", rich_help_panel=_REQ)]
System = Annotated[Optional[str], typer.Option("-s", "--system", metavar="TEXT", help="System prompt.", rich_help_panel=_REQ)]
Temperature = Annotated[Optional[float], typer.Option("--temperature", callback=finite, help="Sampling temperature.", rich_help_panel=_REQ)]
MaxTokens = Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Cap on the reply's tokens.", rich_help_panel=_REQ)]
Params = Annotated[Optional[list[str]], typer.Option("--param", metavar="KEY=VALUE", help="Extra body field; repeatable. VALUE is parsed as JSON when it can be (numbers, true, lists), else taken as text.", rich_help_panel=_REQ)]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output (llmcli docs output); errors also as JSON on stderr.")]
Profile = Annotated[Optional[str], typer.Option("-p", "--profile", metavar="NAME", help="Config profile to use.", envvar="LLMCLI_PROFILE", show_envvar=False, rich_help_panel=_CONN)]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", metavar="URL", help="API base URL, e.g. http://localhost:11434/v1.", show_default="https://api.openai.com/v1", rich_help_panel=_CONN)]
Timeout = Annotated[Optional[float], typer.Option("--timeout", min=0.001, callback=finite, metavar="SECONDS", help="Read timeout per attempt.", show_default="600", rich_help_panel=_CONN)]
MaxTime = Annotated[Optional[float], typer.Option("--max-time", min=0, callback=finite, metavar="SECONDS", help="Total time budget across all retries (like curl --max-time); 0: none.", show_default="none", rich_help_panel=_CONN)]
Retries = Annotated[Optional[int], typer.Option("--retries", min=0, metavar="N", help="Retries after a failed attempt.", show_default="3", rich_help_panel=_CONN)]


def settings_for(*, profile: Optional[str] = None, base_url: Optional[str] = None,
                 model: Optional[str] = None, timeout: Optional[float] = None,
                 max_time: Optional[float] = None, retries: Optional[int] = None,
                 **flags: Any) -> Settings:
    """Load the effective settings with the command's flags on top."""
    env = current()
    settings = load_settings(config=env.config, profile=profile, environ=env.environ, flags={
        "base_url": base_url, "model": model, "timeout": timeout, "max_time": max_time,
        "max_retries": retries, "api": env.api, **flags})
    add_secret(settings.values.get("api_key"))
    if settings.warnings:
        from .output import warn

        for message in settings.warnings:
            warn(message)
    return settings


def client_options(settings: Settings, *, key_in_budget: bool = True) -> Any:
    """The core's options, with the resolved key registered for masking. The time
    ``api_key_cmd`` takes counts against --max-time unless ``key_in_budget`` is off
    (batch: --max-time is each item's budget)."""
    options = settings.client_options(key_in_budget=key_in_budget)
    add_secret(options.api_key)
    from .hints import remember

    remember(settings, options)
    return options


def parse_params(pairs: Optional[list[str]]) -> dict[str, Any]:
    """``--param KEY=VALUE`` pairs as body fields; VALUE is JSON when it parses."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
        except RecursionError:
            raise typer.BadParameter(f"{key.strip()}: JSON nested too deeply",
                                     param_hint="--param") from None
    return params


def request_params(settings: Settings, temperature: Optional[float], max_tokens: Optional[int],
                   params: Optional[list[str]]) -> dict[str, Any]:
    """Body fields beyond model and messages: config defaults, then flags."""
    fields: dict[str, Any] = dict(settings["params"] or {})
    for name, flag in (("temperature", temperature), ("max_tokens", max_tokens)):
        value = flag if flag is not None else settings[name]
        if value is not None:
            fields[name] = value
    fields.update(parse_params(params))
    return without_stream_fields(fields)


def without_stream_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` less ``stream``/``stream_options`` (the command decides whether the
    reply streams), with one warning if any was set."""
    from ..core.chat import without_stream_fields as strip

    kept, dropped = strip(fields)
    if dropped:
        from .output import warn

        warn(f"ignoring {' and '.join(dropped)} from --param or the config's params: "
             "`llmcli stream` streams, `llmcli chat` does not")
    return kept


# A conversation or messages file larger than this is refused, not read whole: a path
# such as /dev/zero or a runaway file must end in one line, not in MemoryError. The
# attachments a conversation holds are kept by reference, so real files stay small.
MAX_MESSAGES_BYTES = 256 * 1024 * 1024


def read_limited(path: Path, limit: int, hint: str) -> str:
    """The text of ``path``, or a usage error when it is longer than ``limit`` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise typer.BadParameter(f"{path} is larger than {limit // (1024 * 1024)} MB",
                                 param_hint=hint)
    return data.decode("utf-8")


def load_messages(path: Optional[Path], *, hint: str = "--messages") -> list[dict[str, Any]]:
    """``--messages FILE`` (or ``--conversation FILE``, named by ``hint``): a JSON list
    of messages in the API's own shape."""
    if path is None:
        return []
    try:
        data = json.loads(read_limited(path, MAX_MESSAGES_BYTES, hint))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=hint)
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not valid JSON: {exc}", param_hint=hint)
    except RecursionError:
        raise typer.BadParameter(f"{path} is JSON nested too deeply to read", param_hint=hint)
    if not isinstance(data, list) or not all(isinstance(m, dict) and "role" in m for m in data):
        raise typer.BadParameter(f"{path} must hold a JSON list of messages with a role each",
                                 param_hint=hint)
    return data


def require_model(settings: Settings) -> str:
    """The model to use; it always has a default, but a profile may blank it."""
    model = settings["model"]
    if not model:
        raise ConfigError("no model: pass -m/--model or set `model` in the config")
    return str(model)
