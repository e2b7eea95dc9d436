"""Shell completion: the committed scripts match the app, and a real bash (and zsh and
fish where installed) completes commands, options, profiles and models with them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from llmcli.cli.complete import config_values

from .conftest import ROOT
from .pty_helper import Terminal, terminal_env

COMPLETIONS = ROOT / "completions"
CONFIG = """\
model: gpt-4o
profiles:
  local:
    base_url: http://localhost:11434/v1
    model: llama3.2
  groq:
    model: llama-3.3-70b-versatile
"""


def load_generator():
    spec = importlib.util.spec_from_file_location("completions_generate",
                                                  COMPLETIONS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module    # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return load_generator()


@pytest.fixture
def shell_env(tmp_path, api_env):
    """PATH with an `llmcli` that runs this checkout, and a config with profiles."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "llmcli"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmcli "$@"\n')
    wrapper.chmod(0o755)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return dict(api_env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                LLMCLI_CONFIG=str(config), PYTHONPATH=str(ROOT))


# -- the committed scripts are what the generator makes from the app -------------------

def test_committed_scripts_are_not_stale(gen):
    nodes = gen.app_nodes()
    for name, render in gen.SCRIPTS.items():
        committed = (COMPLETIONS / name).read_text(encoding="utf-8")
        assert committed == render(nodes), (
            f"completions/{name} is stale: run `python completions/generate.py`")


def test_a_new_option_makes_the_scripts_stale(gen):
    nodes = gen.app_nodes()
    chat = next(n for n in nodes if n.path == "chat")
    chat.options.append(gen.Option(["--brand-new"], "New.", None))
    for name, render in gen.SCRIPTS.items():
        text = render(nodes)
        assert "--brand-new" in text or "-l brand-new" in text
        assert text != (COMPLETIONS / name).read_text(encoding="utf-8")


def test_every_command_and_option_of_the_app_is_in_the_scripts(gen):
    bash = (COMPLETIONS / "llmcli.bash").read_text()
    for node in gen.app_nodes():
        assert all(name in bash for name in node.commands)
        assert all(f" {n}" in bash or f"'{n}" in bash for o in node.options for n in o.names)


# -- a real bash -----------------------------------------------------------------------

def bash_complete(line: str, env: dict[str, str]) -> list[str]:
    """What the committed script offers for ``line`` (completing its last word), called
    the way bash itself calls it: through the function `complete -p` registered."""
    words = line.split(" ")
    script = f"""
source {COMPLETIONS / 'llmcli.bash'}
func=$(complete -p llmcli | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')
COMP_WORDS=({' '.join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={line!r}
COMP_POINT=${{#COMP_LINE}}
"$func" llmcli "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completes_commands_and_options(shell_env):
    assert bash_complete("llmcli c", shell_env) == ["chat", "config"]
    assert bash_complete("llmcli chat --pro", shell_env) == ["--profile"]
    assert bash_complete("llmcli config s", shell_env) == ["show"]
    assert bash_complete("llmcli -v chat --max-t", shell_env) == ["--max-tokens", "--max-time"]


def test_bash_completes_profiles_and_models_from_the_config_without_network(shell_env, server):
    before = server.stats()["total_requests"]
    assert bash_complete("llmcli chat -p ", shell_env) == ["groq", "local"]
    assert bash_complete("llmcli stream --profile l", shell_env) == ["local"]
    assert bash_complete("llmcli chat -m ", shell_env) == [
        "gpt-4o", "llama-3.3-70b-versatile", "llama3.2"]
    assert server.stats()["total_requests"] == before      # OPENAI_BASE_URL is the server


def test_bash_reads_the_config_named_by_config(shell_env, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("profiles:\n  work:\n    model: m\n")
    assert bash_complete(f"llmcli --config {other} chat -p ", shell_env) == ["work"]


def test_bash_completes_file_arguments(shell_env, tmp_path):
    (tmp_path / "conversation.json").write_text("[]")
    found = bash_complete(f"llmcli chat --conversation {tmp_path}/conv", shell_env)
    assert found == [f"{tmp_path}/conversation.json"]


def test_tab_in_an_interactive_bash(shell_env, tmp_path):
    bash = shutil.which("bash") or "/bin/bash"
    term = Terminal([bash, "--norc", "--noprofile", "-i"], terminal_env(shell_env, PS1="$ "),
                    cwd=str(tmp_path))
    try:
        term.expect("$ ")
        term.send(f"source {COMPLETIONS / 'llmcli.bash'}\r")
        term.expect("$ ")
        term.send("llmcli chat --pro\t")
        term.expect("llmcli chat --profile ")          # the one match is inserted
        term.send("\x15llmcli c\t\t")                   # ^U, then TAB TAB lists both
        assert "chat" in term.expect("config").split()
    finally:
        term.close()


# -- the values path: config file only, no Typer, no HTTP --------------------------------

def test_values_path_imports_neither_typer_nor_httpx(shell_env):
    code = ("import sys\nfrom llmcli.__main__ import main\ntry:\n    main([])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('typer', 'click', 'httpx') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(shell_env, _LLMCLI_COMPLETE_VALUES="profile"), timeout=20)
    assert done.stdout.splitlines() == ["groq", "local", "[]"]


def test_values_from_a_broken_or_missing_config_are_empty(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("profiles: [unclosed\n")
    assert config_values("profile", str(broken)) == []
    assert config_values("model", str(tmp_path / "missing.yaml")) == []


# -- zsh and fish, where installed (Debian: apt-get install zsh fish) --------------------

@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_options_and_profiles(shell_env):
    script = (f"source {COMPLETIONS / 'llmcli.fish'}\n"
              "complete -C 'llmcli c'; complete -C 'llmcli chat --pro'; "
              "complete -C 'llmcli chat -p '")
    done = subprocess.run(["fish", "--no-config", "-c", script], env=shell_env,
                          capture_output=True, text=True, timeout=20)
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == [
        "chat", "config", "--profile", "groq", "local"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_tab_in_an_interactive_zsh(shell_env, tmp_path):
    env = terminal_env(shell_env, TERM="xterm")
    term = Terminal([shutil.which("zsh"), "-f", "-i"], env, cwd=str(tmp_path))
    try:
        bin_dir = shell_env["PATH"].split(os.pathsep)[0]
        term.send(f"fpath=({COMPLETIONS} $fpath); path=({bin_dir} $path); autoload -U compinit;"
                  " compinit -u; echo RE''ADY\r")
        term.expect("READY")
        term.send("llmcli c\t\t")
        term.expect("Create and inspect the config file")
        term.send("\x15")                 # ^U: kill the line
        term.send("llmcli chat -p \t\t")
        term.expect("groq")
    finally:
        term.close()
