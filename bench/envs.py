"""The benchmark's virtualenvs, made once and cached under bench/ (git-ignored).

- ``bench/.venv-llmcli``: llmcli from this working tree (an editable install in
  setuptools' "compat" mode: a plain .pth line, so start-up pays for no import hook,
  as a regular install would not), its dependencies as pyproject.toml pins them, and
  the openai SDK for the SDK scripts and the batch peers.
- ``bench/.venv-peers/llm`` and ``bench/.venv-peers/sgpt``: the newest `llm` and
  `shell-gpt` from PyPI, each in its own venv (together, pip can only satisfy both by
  falling back to shell-gpt 1.0). shell-gpt imports click, which typer >= 0.26 no
  longer installs, so click is added.

A venv is rebuilt when what it was built from changes (the requirement list, the
Python, and for llmcli pyproject.toml).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SPECS: dict[str, list[str]] = {
    "llmcli": ["-e", str(ROOT), "--config-settings", "editable_mode=compat", "openai"],
    "llm": ["llm"],
    "sgpt": ["shell-gpt", "click"],
}
PACKAGES = {"llmcli": ["llmcli", "typer", "click", "httpx", "httpcore", "openai"],
            "llm": ["llm", "openai", "click"], "sgpt": ["shell-gpt", "openai", "typer"]}


def venv_dir(name: str) -> Path:
    return BENCH / ".venv-llmcli" if name == "llmcli" else BENCH / ".venv-peers" / name


def python_of(name: str) -> Path:
    return venv_dir(name) / "bin" / "python"


def _stamp(name: str) -> str:
    parts = [sys.version, json.dumps(SPECS[name])]
    if name == "llmcli":
        parts.append(hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def ensure(name: str, log: Callable[[str], None] = print) -> Optional[str]:
    """Make or reuse the venv ``name``; return None, or why it could not be made."""
    where = venv_dir(name)
    stamp_file = where / ".bench-stamp"
    if python_of(name).exists() and stamp_file.exists() and \
            stamp_file.read_text() == _stamp(name):
        return None
    packages = " ".join("." if a == str(ROOT) else a for a in SPECS[name])
    log(f"creating {where.relative_to(ROOT)}: pip install {packages} ...")
    steps = [[sys.executable, "-m", "venv", "--clear", str(where)],
             [str(where / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
              *SPECS[name]]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-300:]
            return f"`{' '.join(step[:4])} ...` failed: {tail}"
    stamp_file.write_text(_stamp(name))
    return None


def versions(name: str) -> dict[str, str]:
    """Installed versions of the packages that matter in venv ``name``."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for p in sys.argv[1:]:\n"
            "    try: out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: pass\n"
            "print(json.dumps(out))")
    done = subprocess.run([str(python_of(name)), "-c", code, *PACKAGES[name]],
                          capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}
