"""Effective settings: defaults < file < OPENAI_* env < profile < LLMCLI_* env < flags.

Every value remembers where it came from, for `llmcli config show`. The API key is a
unit of its own: the highest layer that sets any of ``api_key``, ``api_key_env`` or
``api_key_cmd`` decides it, so a profile's key is never mixed with another layer's.
An ``OPENAI_API_KEY`` is never sent to a ``base_url`` that a profile set: a profile
with its own server must name its own key.
"""

from __future__ import annotations

import datetime
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..core.errors import ConfigError
from ..core.dialects import DEFAULT_API, DIALECTS, Spec, spec
from ..core.options import (DEFAULT_BASE_URL, ClientOptions, mask_key, mask_url, redact,
                            redact_obj)
from ..core.retry import RetryPolicy
from .files import ConfigFile, config_path, load_config_file

KEY_FIELDS = ("api_key", "api_key_env", "api_key_cmd")
API_NAMES = tuple(DIALECTS)
# Settings whose default comes from the dialect (an `api: anthropic` profile talks to
# api.anthropic.com with x-api-key unless it says otherwise).
DIALECT_DEFAULTS = ("base_url", "auth_header", "auth_scheme")


def _str_map(value: Any) -> bool:
    # YAML reads an unquoted `api-version: 2024-06-01` as a date: its str() is the text.
    return isinstance(value, dict) and all(isinstance(v, (str, int, float, datetime.date))
                                           for v in value.values())


# name -> (type check, human type name, default)
SCHEMA: dict[str, tuple[Callable[[Any], bool], str, Any]] = {
    "api": (lambda v: v in API_NAMES, "one of " + ", ".join(API_NAMES), DEFAULT_API),
    "base_url": (lambda v: isinstance(v, str), "a string", DEFAULT_BASE_URL),
    "api_key": (lambda v: isinstance(v, str), "a string", None),
    "api_key_env": (lambda v: isinstance(v, str), "a string", None),
    "api_key_cmd": (lambda v: isinstance(v, str), "a string", None),
    "model": (lambda v: isinstance(v, str), "a string", "gpt-4o-mini"),
    "system": (lambda v: isinstance(v, str), "a string", None),
    "temperature": (lambda v: _number(v), "a number", None),
    "max_tokens": (lambda v: _integer(v) and v > 0, "a positive integer", None),
    "timeout": (lambda v: _number(v) and v > 0, "a positive number of seconds", 600.0),
    "connect_timeout": (lambda v: _number(v) and v > 0, "a positive number of seconds", 10.0),
    "max_time": (lambda v: _number(v) and v >= 0, "a number of seconds (0: no limit)", None),
    "max_retries": (lambda v: _integer(v) and v >= 0, "a whole number >= 0", 3),
    "headers": (_str_map, "a mapping of header names to strings", None),
    "query": (_str_map, "a mapping of query parameters to strings", None),
    "params": (lambda v: isinstance(v, dict), "a mapping of body fields", None),
    "auth_header": (lambda v: isinstance(v, str), "a string", "Authorization"),
    "auth_scheme": (lambda v: isinstance(v, str), "a string", "Bearer"),
    "auth_query": (lambda v: isinstance(v, str) and bool(v), "a query parameter name", None),
    "ca_bundle": (lambda v: isinstance(v, str), "a path", None),
    "system_trust": (lambda v: isinstance(v, bool), "true or false", False),
    "verify": (lambda v: isinstance(v, bool), "true or false", True),
    "proxy": (lambda v: isinstance(v, str), "a URL", None),
    # chat -c/--continue: keep each turn in the state dir (cli/last.py); false: never
    "keep_last_conversation": (lambda v: isinstance(v, bool), "true or false", True),
    "prices": (lambda v: isinstance(v, dict) and all(isinstance(e, dict) for e in v.values()),
               "a mapping of model ids to {input, output, cached_input, batch_discount}", None),
    "log": (lambda v: isinstance(v, bool), "true or false", True),
    "log_content": (lambda v: isinstance(v, bool), "true or false", False),
}
# Settings whose mappings merge across layers (a profile adds to the file's prices).
MERGED = ("prices",)
TOP_ONLY = {"default_profile": (lambda v: isinstance(v, str), "a string"),
            "profiles": (lambda v: isinstance(v, dict), "a mapping of profile names")}

# LLMCLI_<NAME> for every scalar setting, plus the SDK's own variables.
ENV_PARSERS: dict[str, Callable[[str], Any]] = {
    "base_url": str, "api_key": str, "api_key_env": str, "api_key_cmd": str, "model": str,
    "system": str, "temperature": float, "max_tokens": int, "timeout": float,
    "connect_timeout": float, "max_time": float, "max_retries": int, "ca_bundle": str,
    "proxy": str, "auth_header": str, "auth_scheme": str, "api": str, "auth_query": str,
}
OPENAI_ENV = {"OPENAI_API_KEY": "api_key", "OPENAI_BASE_URL": "base_url"}


def _number(v: Any) -> bool:
    # inf and nan are floats too (`.inf` in YAML, LLMCLI_TIMEOUT=inf) but no setting
    # means anything with them: 0 is how max_time says "no limit".
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _non_finite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class Settings:
    """The effective settings and where each value came from."""

    values: dict[str, Any] = field(repr=False)    # may hold a literal api_key
    sources: dict[str, str]
    path: Path
    file_found: bool
    profile: Optional[str] = None
    profiles: list[str] = field(default_factory=list)
    environ: Optional[Mapping[str, str]] = field(default=None, repr=False)  # None: os.environ
    warnings: list[str] = field(default_factory=list)   # for the command to show

    def __getitem__(self, name: str) -> Any:
        if name in DIALECT_DEFAULTS:
            return self.effective().get(name)
        return self.values.get(name)

    def api_key(self, budget: Optional[float] = None) -> Optional[str]:
        """Resolve the key: a literal, an env var's value, or a command's output (which
        may take at most ``budget`` seconds, what --max-time leaves); for a native
        dialect with none set, its own variable (ANTHROPIC_API_KEY, ...)."""
        env = os.environ if self.environ is None else self.environ
        defaults = spec(self.values.get("api") or DEFAULT_API)
        if self._from_default("api_key", defaults) and defaults.key_env != "OPENAI_API_KEY":
            return env.get(defaults.key_env) or None
        if self.values.get("api_key"):
            return self.values["api_key"]
        if self.values.get("api_key_env"):
            name = self.values["api_key_env"]
            value = env.get(name)
            if not value:
                raise ConfigError(f"api_key_env names ${name}, which is not set",
                                  key="api_key_env")
            return value
        if self.values.get("api_key_cmd"):
            return run_key_command(self.values["api_key_cmd"], budget=budget)
        return None

    def client_options(self, *, resolve_key: bool = True, key_in_budget: bool = True,
                       clock: Callable[[], float] = time.monotonic) -> ClientOptions:
        """What the core's clients need. ``max_time`` bounds ``api_key_cmd`` too: the
        command may run at most that long, and with ``key_in_budget`` (one request,
        not batch's per-item budget) the time it took is taken off the budget."""
        v = self.effective()
        verify: Any = v["ca_bundle"] or v["verify"]
        max_time = float(v["max_time"]) if v["max_time"] else None
        started = clock()
        key = self.api_key(budget=max_time) if resolve_key else None
        if resolve_key and not key:
            require_key_for_provider(v["base_url"], v["auth_header"], v["headers"])
        if max_time is not None and key_in_budget:
            max_time = max(max_time - (clock() - started), 1e-6)   # 0 would mean no limit
        return ClientOptions(
            base_url=v["base_url"], api_key=key,
            auth_header=v["auth_header"], auth_scheme=v["auth_scheme"],
            auth_query=v["auth_query"], api=v["api"],
            headers={k: str(x) for k, x in (v["headers"] or {}).items()},
            query={k: str(x) for k, x in (v["query"] or {}).items()},
            connect_timeout=float(v["connect_timeout"]), read_timeout=float(v["timeout"]),
            max_time=max_time,
            retry=RetryPolicy(max_retries=int(v["max_retries"])), verify=verify,
            system_trust=bool(v["system_trust"]), proxy=v["proxy"])

    def effective(self) -> dict[str, Any]:
        """The values, with the dialect's defaults where no layer set one."""
        defaults = spec(self.values.get("api") or DEFAULT_API)
        values = dict(self.values)
        for name in DIALECT_DEFAULTS:
            if self._from_default(name, defaults):
                values[name] = getattr(defaults, name)
        return values

    def _from_default(self, name: str, defaults: Spec) -> bool:
        """Whether ``name`` is unset for this dialect: a default, or an OPENAI_*
        variable while the dialect is not OpenAI's (OPENAI_BASE_URL must not send
        Anthropic requests to OpenAI, nor OPENAI_API_KEY go to Google)."""
        source = self.sources.get(name, "default")
        return source == "default" or (source.startswith("env:OPENAI_")
                                       and defaults.key_env != "OPENAI_API_KEY")

    def shown(self, *, typed: bool = False) -> list[tuple[str, Any, str]]:
        """(name, value, source) rows for `config show`: the key masked, and any
        credential in headers, query or the proxy URL too. ``typed``: values keep
        their JSON types (``false``, ``600.0``, ``3``, mappings) for ``--json``;
        otherwise they are text."""
        secrets = self.client_options(resolve_key=False).secrets()
        rows = []
        values = self.effective()
        for name in SCHEMA:
            value = values.get(name)
            if value is None:
                continue
            if name == "api_key":
                shown: Any = mask_key(value)
            elif typed:
                shown = redact_obj(_jsonable(value), secrets)
            else:
                shown = redact(_show(value), secrets)
            if name in ("base_url", "proxy") and isinstance(shown, str):
                shown = mask_url(shown)     # a URL's password, however short
            rows.append((name, shown, self._source(name)))
        return rows

    def _source(self, name: str) -> str:
        """Where a value came from; a native dialect's own default says so."""
        api = self.values.get("api") or DEFAULT_API
        chosen = self.sources.get("api", "default") != "default"
        if name in DIALECT_DEFAULTS and chosen and self._from_default(name, spec(api)):
            return f"default of api {api}"
        return self.sources.get(name, "default")


def require_key_for_provider(base_url: str, auth_header: str, headers: Any) -> None:
    """A provider's own API (OpenAI's, Anthropic's, Google's: the dialects' default
    hosts) answers nothing without a key: say so before the network, naming the ways
    to give one. Other hosts (local servers) may need none."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return
    key_env = {urlsplit(s.base_url).hostname: s.key_env for s in DIALECTS.values()}.get(host)
    if key_env is None or auth_header.lower() in {k.lower() for k in headers or {}}:
        return
    raise ConfigError(f"no API key for {base_url}: export {key_env}=..., or name the "
                      "variable that holds it with api_key_env in the config file "
                      "(`llmcli config init` writes a commented one)", key="api_key")


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: a YAML date (an unquoted api-version) as its text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def run_key_command(command: str, budget: Optional[float] = None) -> str:
    """Run ``api_key_cmd`` (for password managers); its first line is the key. It may
    take at most 60 s, or ``budget`` seconds when --max-time leaves less
    (llmcli/config/keycmd.py: a child left holding the pipe cannot hold llmcli)."""
    from .keycmd import run_key_command as run

    return run(command, budget)


def load_settings(*, config: Optional[str] = None, profile: Optional[str] = None,
                  flags: Optional[Mapping[str, Any]] = None,
                  environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Merge every layer into the effective :class:`Settings`."""
    env = os.environ if environ is None else environ
    path = config_path(config, env)
    cfg = load_config_file(path)
    if cfg is None and (config or env.get("LLMCLI_CONFIG")):   # asked for by name: must exist
        raise ConfigError(f"config file {path} does not exist", path=str(path))
    values = {name: spec[2] for name, spec in SCHEMA.items()}
    sources = {name: "default" for name in SCHEMA}
    top, profiles = _validate_file(cfg) if cfg else ({}, {})
    _apply(values, sources, _layer(top, f"file {path}"))
    below_openai_env = {name: (values[name], sources[name]) for name in OPENAI_SHADOWED}
    _apply(values, sources, _env_layer(env, OPENAI_ENV))
    chosen = profile or env.get("LLMCLI_PROFILE") or (cfg.data.get("default_profile") if cfg else None)
    if chosen:
        if chosen not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"unknown profile {chosen!r} (profiles: {known})", key="profiles")
        _apply(values, sources, _layer(profiles[chosen], f"profile {chosen}"))
    llmcli_env = {f"LLMCLI_{name.upper()}": name for name in ENV_PARSERS}
    _apply(values, sources, _env_layer(env, llmcli_env))
    _apply(values, sources, _layer(flags or {}, "flag"))
    _drop_openai_env_for_native(values, sources, below_openai_env)
    settings = Settings(values, sources, path, cfg is not None, chosen, sorted(profiles), environ)
    if cfg is not None:
        settings.warnings.extend(_exposed_key(cfg))
    return settings


def _exposed_key(cfg: ConfigFile) -> list[str]:
    """A warning, as ssh gives, when a file that holds a key is readable by others."""
    if os.name != "posix":
        return []
    found = cfg.data.get("profiles")
    profiles: dict[Any, Any] = found if isinstance(found, dict) else {}
    holds_key = bool(cfg.data.get("api_key")) or any(
        isinstance(p, dict) and p.get("api_key") for p in profiles.values())
    try:
        mode = os.stat(cfg.path).st_mode
    except OSError:
        return []
    if not holds_key or not mode & 0o044:
        return []
    return [f"{cfg.path} holds an API key and is readable by "
            f"{'group and others' if mode & 0o004 else 'its group'}: chmod 600 {cfg.path}"]


Layer = dict[str, tuple[Any, str]]   # name -> (value, where it came from)
OPENAI_SHADOWED = ("base_url",) + KEY_FIELDS   # what an OPENAI_* variable may set


def _drop_openai_env_for_native(values: dict[str, Any], sources: dict[str, str],
                                below: Layer) -> None:
    """OPENAI_BASE_URL and OPENAI_API_KEY are OpenAI's: when the run speaks another
    API (Anthropic, Gemini), what they set is taken back and the layer below them
    (the file's top level, or the default) shows through, so a file's ``base_url`` or
    ``api_key_env`` is not lost to a variable that was never meant for it."""
    if spec(values.get("api") or DEFAULT_API).key_env == "OPENAI_API_KEY":
        return
    if sources.get("base_url", "").startswith("env:OPENAI_"):
        values["base_url"], sources["base_url"] = below["base_url"]
    if any(sources.get(k, "").startswith("env:OPENAI_") for k in KEY_FIELDS):
        for k in KEY_FIELDS:
            values[k], sources[k] = below[k]


def _layer(mapping: Mapping[str, Any], source: str) -> Layer:
    return {k: (v, source) for k, v in mapping.items() if v is not None}


def _apply(values: dict[str, Any], sources: dict[str, str], layer: Layer) -> None:
    """Lay one layer over the values. A layer that sets any key field replaces the key
    as a whole; a profile that moves base_url without a key drops OPENAI_API_KEY."""
    key_source = next((layer[k][1] for k in KEY_FIELDS if k in layer), None)
    base = layer.get("base_url")
    if key_source is None and base and base[1].startswith("profile") \
            and sources.get("api_key") == "env:OPENAI_API_KEY":
        key_source = base[1]
    if key_source is not None:
        for k in KEY_FIELDS:
            values[k], sources[k] = None, key_source
    for name, (value, source) in layer.items():
        if name in MERGED and isinstance(values.get(name), dict) and isinstance(value, dict):
            value = {**values[name], **value}
        values[name], sources[name] = value, source


def _env_layer(env: Mapping[str, str], mapping: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    for var, name in mapping.items():
        raw = env.get(var)
        if not raw:
            continue
        try:
            value = ENV_PARSERS[name](raw)
        except ValueError:
            value = None
        check, kind, _ = SCHEMA[name]
        if value is None or not check(value):
            raise ConfigError(f"${var}={raw!r} is not valid: {name} must be {kind}", key=var)
        layer[name] = (value, f"env:{var}")
    return layer


def _validate_file(cfg: ConfigFile) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Check every key and type; return the top-level values and the profiles."""
    top: dict[str, Any] = {}
    for key, value in cfg.data.items():
        if key in TOP_ONLY:
            check, kind = TOP_ONLY[key]
            if value is not None and not check(value):    # null: unset, as for any key
                raise cfg.error(f"{key} must be {kind}", key)
            continue
        _check(cfg, key, value, (str(key),))
        top[key] = value
    profiles: dict[str, dict[str, Any]] = {}
    for name, body in (cfg.data.get("profiles") or {}).items():
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise cfg.error("a profile must be a mapping of settings", "profiles", str(name))
        for key, value in body.items():
            _check(cfg, key, value, ("profiles", str(name), str(key)))
        profiles[str(name)] = body
    default = cfg.data.get("default_profile")
    if default and default not in profiles:
        raise cfg.error(f"default_profile {default!r} is not among the profiles", "default_profile")
    return top, profiles


def _check(cfg: ConfigFile, key: Any, value: Any, where: tuple[str, ...]) -> None:
    if key not in SCHEMA:
        import difflib

        close = difflib.get_close_matches(str(key), list(SCHEMA) + list(TOP_ONLY), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise cfg.error(f"unknown key {key!r}{hint}", *where)
    check, kind, _ = SCHEMA[key]
    if value is not None and not check(value):
        given = repr(value) if _non_finite(value) else type(value).__name__   # inf, nan
        raise cfg.error(f"{key} must be {kind}, not {given}", *where)
