"""README.md as a newcomer reads it (issue 8, point 6): its set-up block and the test
server quickstart, run verbatim in bash, in a fresh copy of the working tree with a
fresh venv. Slow-ish (one venv, pip's cache reused); it runs by default and is skipped
only when asked: ``pytest -m "not readme"``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

# Read before the autouse fixture points HOME at a temporary dir: pip's real cache.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")

pytestmark = pytest.mark.readme


def sh_block_after(text: str, marker: str) -> str:
    """The first ```sh block after ``marker`` in ``text``."""
    start = text.index(marker)
    match = re.compile(r"```sh\n(.*?)```", re.S).search(text, start)
    assert match, f"no sh block after {marker!r}"
    return match.group(1)


def copy_tree(dest: Path) -> None:
    """The working tree as a fresh clone would have it (tracked and new files, no
    venv, no caches), uncommitted changes included."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_symlink() or source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), dest / name)
            else:
                shutil.copy2(source, dest / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_readme_quickstart_works_verbatim_in_a_fresh_venv(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = sh_block_after(readme, "## Set-up")
    server = sh_block_after(readme, "No server at hand?")
    # the one change: a free port, as other test runs may hold 8765 on this machine
    port = str(free_port())
    script = "set -e\n" + setup + server.replace("8765", port).replace(
        "/tmp/llmcli-test-server.log", str(tmp_path / "server.log"))
    tree = tmp_path / "clone"
    copy_tree(tree)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "LLMCLI_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(PIP_CACHE_DIR=PIP_CACHE, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.Popen(["bash", "-c", script], cwd=tree, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=900)
    finally:   # a failed step must not leave the test server behind
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Usage: llmcli" in done.stdout          # llmcli --help, from the PATH
    assert done.stdout.rstrip().endswith("echo: hello")
    # the same venv builds a wheel that carries the docs `llmcli docs` prints
    wheel = subprocess.run([str(tree / ".venv" / "bin" / "pip"), "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist"), "."], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    (built,) = (tmp_path / "dist").glob("llmcli-*.whl")
    names = zipfile.ZipFile(built).namelist()
    assert {"llmcli/docs/usage.md", "llmcli/docs/exit-codes.md"} <= set(names)
