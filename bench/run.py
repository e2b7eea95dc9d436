"""llmcli's performance benchmark (issue 5): start-up, one-shot, streaming and in-process
parsing, side by side with its peers in the same run. See docs/performance.md.

    bench/run            # the full run: ~6.5 minutes on 2 cores, half of it batch
    bench/run --quick    # ~3 minutes: fewer runs, no 20,000-chunk `llm` stream

Needs only Python >= 3.10 and curl; makes (once) and reuses bench/.venv-llmcli and
bench/.venv-peers/{llm,sgpt} (bench/envs.py). Starts the project's test server as a
child process, measures its ceiling, then times every command in interleaved rounds:
each figure is a median with min and max, and each ratio compares figures of this run.
Prints markdown tables and saves them under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import envs  # noqa: E402
from bench.report import Section, inproc_table, section_table, target_line  # noqa: E402
from bench.timing import Command, Summary, measure  # noqa: E402
from llmcli.testing import start_server_process  # noqa: E402

KEY = "sk-bench-0000000000000000"
MODEL = "test-model"
CHUNKS = 20000
STREAM_PROMPT = f"#chunks:{CHUNKS}"
LAST_WORD = f"w{CHUNKS - 1}"
STREAM_BODY = {"model": MODEL, "messages": [{"role": "user", "content": STREAM_PROMPT}],
               "stream": True, "stream_options": {"include_usage": True}}   # as llmcli sends
# Interpreter flags a CI shell may set that users do not have: they would slow every
# Python start-up (no .pyc cache) or every write (unbuffered) in the peers and in llmcli.
DROPPED_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPATH", "PYTHONHOME")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    python = subprocess.run([str(envs.python_of("llmcli")), "-VV"], capture_output=True,
                            text=True).stdout.strip()
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    return {"cpus": str(os.cpu_count()), "cpu": cpu, "python": python,
            "os": platform.platform(), "curl": curl.split("\n")[0].split(" (")[0],
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def child_env(base_url: str, work: Path) -> dict[str, str]:
    """One environment for every client: the test server, a throwaway HOME and config
    dirs (no user config anywhere), and the peers' own settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED_ENV and not k.startswith(("OPENAI_", "LLMCLI_"))}
    env.update(HOME=str(work / "home"), XDG_CONFIG_HOME=str(work / "config"),
               OPENAI_BASE_URL=base_url, OPENAI_API_KEY=KEY, LLMCLI_MODEL=MODEL,
               LLM_USER_PATH=str(work / "llm"), API_BASE_URL=base_url, DEFAULT_MODEL=MODEL,
               NO_PROXY="127.0.0.1,localhost", PYTHONIOENCODING="utf-8")
    return env


def configure_llm(work: Path, base_url: str) -> None:
    """Point `llm` at the test server: a model in extra-openai-models.yaml, its key."""
    home = work / "llm"
    home.mkdir(parents=True, exist_ok=True)
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: bench-local\n  model_name: {MODEL}\n"
        f"  api_base: \"{base_url}\"\n  api_key_name: bench\n")
    (home / "keys.json").write_text(json.dumps({"bench": KEY}))


def post(url: str, body: dict, path: Optional[Path] = None) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Authorization": f"Bearer {KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
    if path is not None:
        path.write_bytes(data)
    return data


def server_ceiling(base_url: str, seconds: float = 1.5) -> float:
    """Non-stream chat completions per second from one keep-alive Python client: a
    lower bound on the server's ceiling (the client is the slower side)."""
    import http.client

    host, port = base_url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        conn.request("POST", "/v1/chat/completions", body, headers)
        conn.getresponse().read()
        done += 1
    conn.close()
    return done / (time.perf_counter() - started)


@dataclass
class Setup:
    """What every section's commands share."""

    env: dict[str, str]
    base_url: str
    replay_url: str
    work: Path
    peers: dict[str, Optional[str]]      # peer -> why it cannot run, or None
    quick: bool

    @property
    def python(self) -> str:
        return str(envs.python_of("llmcli"))

    @property
    def llmcli(self) -> str:
        return str(envs.venv_dir("llmcli") / "bin" / "llmcli")

    def peer(self, name: str, label: str, args: list[str], expect: str,
             skip: str = "") -> Command:
        exe = str(envs.venv_dir(name) / "bin" / name)
        return Command(label, [exe, *args], self.env, expect=expect,
                       unavailable=self.peers[name] or skip)

    def curl(self, *args: str, url: str = "") -> list[str]:
        return ["curl", "-sS", "-H", f"Authorization: Bearer {KEY}", "-H",
                "content-type: application/json", *args,
                url or self.base_url + "/chat/completions"]


def llmcli_over(row: Summary, ref: Summary) -> float:
    """The ratio column of most tables: llmcli's median ÷ this row's."""
    return ref.median / row.median


def one_shot_section(s: Setup) -> Section:
    hello = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})
    echo, scripts = "echo: hello", BENCH / "scripts"
    return Section("One-shot `hello`, end to end (process start to exit)", [
        Command("llmcli chat hello", [s.llmcli, "chat", "hello"], s.env, expect=echo),
        Command("curl", s.curl("-d", hello), s.env, expect=echo),
        Command("python + httpx script", [s.python, str(scripts / "httpx_chat.py"), "hello"],
                s.env, expect=echo),
        Command("python + openai SDK script",
                [s.python, str(scripts / "openai_chat.py"), "hello"], s.env, expect=echo),
        s.peer("llm", "llm -m bench-local hello", ["-m", "bench-local", "hello"], echo),
        s.peer("sgpt", "sgpt --no-cache hello", ["--no-cache", "hello"], echo),
    ], "llmcli ÷ this", llmcli_over, "llmcli chat hello")


def startup_section(s: Setup) -> Section:
    return Section("Start-up: help and version", [
        Command("llmcli --version", [s.llmcli, "--version"], s.env, expect="llmcli"),
        Command("llmcli --help", [s.llmcli, "--help"], s.env, expect="Usage"),
        Command("llmcli chat --help", [s.llmcli, "chat", "--help"], s.env, expect="Usage"),
        Command("python -c pass", [s.python, "-c", "pass"], s.env,
                note="the interpreter alone"),
        s.peer("llm", "llm --help", ["--help"], "Usage"),
        s.peer("llm", "llm --version", ["--version"], "version"),
        s.peer("sgpt", "sgpt --help", ["--help"], "Usage"),
    ], "this ÷ `llm --help`", lambda row, ref: row.median / ref.median, "llm --help")


def stream_sections(s: Setup) -> list[Section]:
    body = "@" + str(s.work / "stream.json")
    (s.work / "stream.json").write_text(json.dumps(STREAM_BODY))
    ours = f"llmcli stream '{STREAM_PROMPT}'"
    server = Section(f"`stream` of a {CHUNKS:,}-chunk reply from the test server", [
        Command(ours, [s.llmcli, "stream", STREAM_PROMPT], s.env, expect=LAST_WORD),
        Command("curl -N", s.curl("-N", "--data-binary", body), s.env, expect=LAST_WORD),
        s.peer("llm", f"llm -m bench-local '{STREAM_PROMPT}'",
               ["-m", "bench-local", STREAM_PROMPT], LAST_WORD,
               skip="skipped in --quick" if s.quick else ""),
    ], "llmcli ÷ this", llmcli_over, ours, [
        "The test server packs many events into each HTTP chunk; curl's time is the "
        "server's. sgpt is left out: it re-parses the whole reply as Markdown and redraws "
        "it on every chunk, so 20,000 chunks would not fit the time budget."])
    replay_env = dict(s.env, OPENAI_BASE_URL=s.replay_url)
    replay = Section(f"The same {CHUNKS:,} events replayed one HTTP chunk per event", [
        Command("llmcli stream", [s.llmcli, "stream", "replay"], replay_env,
                expect=LAST_WORD),
        Command("curl -N", s.curl("-N", "--data-binary", body,
                                  url=s.replay_url + "/chat/completions"),
                replay_env, expect=LAST_WORD),
    ], "llmcli ÷ this", llmcli_over, "llmcli stream",
        ["As OpenAI, vLLM and others send them (bench/scripts/replay_server.py)."])
    return [server, replay]


def run_inproc(body_path: Path, rounds: int) -> tuple[str, dict[str, list[float]]]:
    """The in-process table, and chunks/s per consumer (empty if the script failed)."""
    done = subprocess.run([str(envs.python_of("llmcli")),
                           str(BENCH / "scripts" / "inproc_stream.py"), str(body_path),
                           str(rounds)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return f"### In-process parsing\n\nfailed: {done.stderr.strip()[-500:]}", {}
    result = json.loads(done.stdout)
    rates = {name: [CHUNKS / s for s in secs] for name, secs in result["seconds"].items()}
    return inproc_table(rates, result["deltas"]), rates


def run_batch(quick: bool, env: dict[str, str]) -> str:
    script = BENCH / "batch_bench.py"
    if not script.exists():
        return "### Batch\n\nbench/batch_bench.py is not there yet: no batch figures."
    log("batch benchmark (bench/batch_bench.py) ...")
    done = subprocess.run([str(envs.python_of("llmcli")), str(script),
                           *(["--quick"] if quick else [])], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    if done.returncode != 0:
        return f"### Batch\n\nbench/batch_bench.py failed: {done.stderr.strip()[-800:]}"
    return "### Batch (bench/batch_bench.py)\n\n" + done.stdout.strip()


def targets(sections: list[Section], rates: dict[str, list[float]]) -> list[str]:
    """Issue 5's targets, each with this run's figure."""
    def ratio(section: Section, top: str, bottom: str) -> Optional[float]:
        a, b = section.get(top), section.get(bottom)
        return a.median / b.median if a and b else None

    def rate(name: str) -> Optional[float]:
        values = sorted(rates.get(name, []))
        return values[len(values) // 2] if values else None

    one_shot, startup, stream, replay = sections
    ours, plain, sdk = rate("llmcli parser"), rate("httpx iter_lines"), rate("openai SDK")
    return [
        target_line("`llmcli chat hello` ÷ python + httpx script",
                    ratio(one_shot, "llmcli chat hello", "python + httpx script"), 1.3),
        target_line("`llmcli chat hello` ÷ python + openai SDK script",
                    ratio(one_shot, "llmcli chat hello", "python + openai SDK script"), 0.25),
        target_line("`llmcli --help` ÷ `llm --help`",
                    ratio(startup, "llmcli --help", "llm --help"), 0.25),
        target_line("`llmcli --version` ÷ `llm --help`",
                    ratio(startup, "llmcli --version", "llm --help"), 0.25),
        "- held by tests/test_startup.py: `--version` and `--help` load no HTTP stack "
        "(structural, not timed)",
        target_line(f"`llmcli stream` of {CHUNKS:,} chunks ÷ curl, test server",
                    ratio(stream, f"llmcli stream '{STREAM_PROMPT}'", "curl -N"), 10),
        target_line("the same events, one HTTP chunk each: `llmcli stream` ÷ curl",
                    ratio(replay, "llmcli stream", "curl -N"), None),
        target_line("in-process: llmcli parser ÷ plain httpx iter_lines loop",
                    ours / plain if ours and plain else None, 0.5, at_least=True),
        target_line("in-process: llmcli parser ÷ openai SDK iterator",
                    ours / sdk if ours and sdk else None, 10, at_least=True),
    ]


def header(info: dict[str, str], versions: dict[str, dict[str, str]], command: str,
           ceiling: float, stream_rate: Optional[float]) -> str:
    def names(pkgs: dict[str, str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in pkgs.items()) or "not installed"

    streams = f"; streams at least {stream_rate:,.0f} chunks/s (curl's median below)" \
        if stream_rate else ""
    return "\n".join([
        f"## llmcli benchmark, {time.strftime('%Y-%m-%d %H:%M')}", "",
        f"- machine: {info['cpus']} CPUs, {info['cpu']}; {info['os']}; "
        f"load average at start {info['load']}",
        f"- {info['python']}; {info['curl']}",
        f"- bench/.venv-llmcli: {names(versions['llmcli'])}",
        f"- bench/.venv-peers: llm venv: {names(versions['llm'])}; "
        f"sgpt venv: {names(versions['sgpt'])}",
        f"- command: `{command}`",
        f"- test server ceiling: at least {ceiling:,.0f} non-stream completions/s to one "
        f"keep-alive Python client{streams}",
    ])


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 runs each, 3 in-process rounds, no llm 20,000-chunk stream, "
                             "batch --quick")
    parser.add_argument("--runs", type=int, help="timed runs of every command "
                        "(default 10; --quick: 5)")
    parser.add_argument("--no-peers", action="store_true", help="skip llm and sgpt")
    parser.add_argument("--no-batch", action="store_true", help="skip bench/batch_bench.py")
    parser.add_argument("--output", type=Path, help="also write the report here "
                        "(default bench/results/<time>.md)")
    return parser.parse_args(argv)


@dataclass
class Results:
    sections: list[Section]
    inproc_md: str
    rates: dict[str, list[float]]
    ceiling: float
    env: dict[str, str]


def measure_all(args: argparse.Namespace, peers: dict[str, Optional[str]],
                work: Path) -> Results:
    """Start the test server and the replay server, and time everything against them."""
    runs = args.runs or (5 if args.quick else 10)
    py = str(envs.python_of("llmcli"))
    server = start_server_process(["--port", "0"], python=py,
                                  env=child_env("http://unused", work))
    replay: Optional[subprocess.Popen[str]] = None
    try:
        env = child_env(server.base_url, work)
        configure_llm(work, server.base_url)
        ceiling = server_ceiling(server.base_url)
        body_path = work / "stream.sse"
        post(server.base_url + "/chat/completions", STREAM_BODY, body_path)
        replay = subprocess.Popen([py, str(BENCH / "scripts" / "replay_server.py"),
                                   str(body_path)], stdout=subprocess.PIPE, text=True, env=env)
        replay_url = replay.stdout.readline().split("listening on ")[1].strip()  # type: ignore[union-attr]
        setup = Setup(env, server.base_url, replay_url, work, peers, args.quick)
        sections = [one_shot_section(setup), startup_section(setup), *stream_sections(setup)]
        for section in sections:
            log(section.title)
            measure(section.commands, runs, 1 if args.quick else 2, log)
        log("in-process parsing")
        inproc_md, rates = run_inproc(body_path, 3 if args.quick else 5)
    finally:
        server.stop()
        if replay is not None:
            replay.terminate()
            replay.communicate()
    return Results(sections, inproc_md, rates, ceiling, env)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    begun = time.time()
    failure = envs.ensure("llmcli", log)
    if failure:
        print(f"cannot make bench/.venv-llmcli: {failure}", file=sys.stderr)
        return 1
    peers = {name: "not run (--no-peers)" if args.no_peers else envs.ensure(name, log)
             for name in ("llm", "sgpt")}
    versions = {name: envs.versions(name) if not peers.get(name) else {}
                for name in ("llmcli", "llm", "sgpt")}
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="llmcli-bench-"))
    try:
        results = measure_all(args, peers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    batch_md = "### Batch\n\nnot run (--no-batch)" if args.no_batch else \
        run_batch(args.quick, results.env)

    curl_stream = results.sections[2].get("curl -N")
    command = "bench/run" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    report = "\n\n".join([
        header(info, versions, command, results.ceiling,
               CHUNKS / curl_stream.median if curl_stream else None),
        *(section_table(s) for s in results.sections), results.inproc_md, batch_md,
        "### Targets (issue 5)\n\n" + "\n".join(targets(results.sections, results.rates)),
        f"Whole run: {time.time() - begun:,.0f} s.",
    ]) + "\n"
    print(report)
    out = args.output or BENCH / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    log(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
