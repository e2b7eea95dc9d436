"""Where the config file lives, and reading it with line numbers for error messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from ..core.errors import ConfigError

APP_NAME = "llmcli"
FILE_NAME = "config.yaml"


def config_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The platform's user config directory for llmcli."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = env.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_NAME


def config_path(explicit: Optional[str] = None,
                environ: Optional[Mapping[str, str]] = None) -> Path:
    """The config file: ``--config PATH``, else ``$LLMCLI_CONFIG``, else the user dir."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get("LLMCLI_CONFIG")
    return Path(chosen).expanduser() if chosen else config_dir(env) / FILE_NAME


class ConfigFile:
    """A parsed config file: its data and the line of every key."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[tuple[str, ...], int]) -> None:
        self.path, self.data, self.lines = path, data, lines

    def line(self, *keys: str) -> Optional[int]:
        """The 1-based line where the key at this path is written."""
        return self.lines.get(tuple(keys))

    def error(self, message: str, *keys: str) -> ConfigError:
        """A :class:`ConfigError` that names this file, the key and its line."""
        line = self.line(*keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        key = ".".join(keys) if keys else None
        return ConfigError(f"{where}: {message}", path=str(self.path), key=key, line=line)


def load_config_file(path: Path) -> Optional[ConfigFile]:
    """Read and parse the file, or ``None`` when it does not exist. YAML is imported
    only here, so commands run without a config file never pay for it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", path=str(path)) from exc
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        line, message = yaml_problem(exc)
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: broken YAML: {message}", path=str(path), line=line) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of keys to values",
                          path=str(path))
    return ConfigFile(path, data, _key_lines(node))


def yaml_problem(exc: Any) -> tuple[Optional[int], str]:
    """The line to blame for a YAML error, and what to say. PyYAML marks where it gave
    up; for something left open (``[``, ``{``, a quote) that is the end of the file or
    a later line, so the line where the open construct started is the one to fix."""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    mark, start = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    context = getattr(exc, "context", None) or ""
    left_open = "flow" in context or "quoted" in context or "end of stream" in problem
    if start is None or not left_open or start.line + 1 == line:
        return line, problem
    opened = context.removeprefix("while ").replace("parsing", "").replace("scanning", "")
    return start.line + 1, (f"{' '.join(opened.split())} that starts here is not closed "
                            f"({problem}{f' at line {line}' if line else ''})")


def _key_lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path (``("profiles", "local", "model")``) to its line."""
    lines: dict[tuple[str, ...], int] = {}
    if node is None or not hasattr(node, "value") or not isinstance(node.value, list):
        return lines
    for item in node.value:
        if not isinstance(item, tuple):
            continue
        key_node, value_node = item
        path = prefix + (str(key_node.value),)
        lines[path] = key_node.start_mark.line + 1
        lines.update(_key_lines(value_node, path))
    return lines


def write_private(path: Path, text: str, *, force: bool = False) -> None:
    """Create ``path`` with mode 0600 (its directory 0700); refuse to overwrite
    unless ``force``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise ConfigError(f"{path} already exists (use --force to overwrite)",
                              path=str(path)) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
    except OSError as exc:   # a missing or read-only folder, a file in the way, a full disk
        raise ConfigError(f"cannot write config file {path}: {exc.strerror or exc}",
                          path=str(path)) from exc
