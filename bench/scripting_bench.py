"""What --schema, the usage log and --dry-run cost, measured side by side in one run.

    python bench/scripting_bench.py [--runs 15] [--batch 5000] [--dry 1000000]

- one-shot `chat`: plain, with --schema, and with the usage log off (`log: false`),
  interleaved run by run so that load on the machine hits all three alike; medians;
- `batch` at -c 64 with the usage log on and off, interleaved; items/s medians;
- `batch --dry-run` on 100,000 and N prompts: seconds and peak RSS (flat memory means
  the same RSS for both).

Everything runs against the project's test server on 127.0.0.1 (llmcli.testing).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmcli.testing import MockOpenAIServer

SCHEMA = json.dumps({"type": "object", "properties": {"name": {"type": "string"},
                                                      "age": {"type": "integer"}},
                     "required": ["name", "age"], "additionalProperties": False})
KEY = "sk-bench-0123456789abcdef"


def run(args: list[str], env: dict[str, str]) -> float:
    """Seconds one llmcli process took; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "llmcli", *args], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"llmcli {' '.join(args)} failed: {done.stderr}")
    return elapsed


def environment(base_url: str, work: Path, log: bool) -> dict[str, str]:
    cfg = work / ("on" if log else "off")
    cfg.mkdir(exist_ok=True)
    (cfg / "config.yaml").write_text("" if log else "log: false\n")
    return dict(os.environ, OPENAI_BASE_URL=base_url, OPENAI_API_KEY=KEY,
                LLMCLI_MODEL="test-model", LLMCLI_CONFIG=str(cfg / "config.yaml"),
                XDG_DATA_HOME=str(work / "data"), NO_PROXY="127.0.0.1")


def one_shot(base_url: str, work: Path, runs: int) -> dict[str, float]:
    on, off = environment(base_url, work, True), environment(base_url, work, False)
    cases = {"chat (log on)": (["chat", "hi"], on),
             "chat --schema (log on)": (["chat", "--schema", SCHEMA, "hi"], on),
             "chat (log: false)": (["chat", "hi"], off)}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(2):                       # warm the page cache and the .pyc files
        for args, env in cases.values():
            run(args, env)
    for _ in range(runs):
        for name, (args, env) in cases.items():
            times[name].append(run(args, env))
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


# What `chat` has imported before these paths run; then the path, timed alone, in a
# fresh interpreter each run (the minimum of several runs: the least disturbed by load).
PREAMBLE = """
import time, json
import llmcli.cli.chat, llmcli.core.client
from llmcli.config import load_settings
from llmcli.core.chat import ChatResult
settings = load_settings(environ={})
result = ChatResult(content='{"name": "Ada", "age": 36}', finish_reason="stop",
                    usage={"prompt_tokens": 12, "completion_tokens": 9}, model="gpt-4o-mini")
"""
PATHS = {
    "--schema: import, read, response_format, validate": """
t = time.perf_counter()
from llmcli.cli import scripting
schema = scripting.read_schema(SCHEMA)
body = scripting.shape_body({"model": "m", "messages": []}, "hi", [], schema, {})
run = scripting.Run(settings, "chat", schema)
run.parsed = run.check(result.content)
""",
    "usage log: price, import sqlite3, one-row transaction": """
from llmcli.cli import scripting
run = scripting.Run(settings, "chat")
t = time.perf_counter()
run.done(result, {"model": "gpt-4o-mini"})
run.finish()
""",
}


def path_cost(work: Path, runs: int) -> dict[str, float]:
    """Milliseconds each path adds, minimum over ``runs`` fresh interpreters."""
    env = dict(os.environ, XDG_DATA_HOME=str(work / "path-data"), HOME=str(work))
    costs: dict[str, float] = {}
    for name, code in PATHS.items():
        script = (f"SCHEMA = {SCHEMA!r}\n" + PREAMBLE + code
                  + "print((time.perf_counter() - t) * 1000)\n")
        samples = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                  text=True, check=True)
            samples.append(float(done.stdout.strip().splitlines()[-1]))
        costs[name] = min(samples)
    return costs


def batch_rate(base_url: str, work: Path, items: int, rounds: int) -> dict[str, float]:
    prompts = work / "prompts.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(items)))
    rates: dict[str, list[float]] = {"log on": [], "log: false": []}
    order = (("log on", True), ("log: false", False))
    for number in range(rounds):     # ABBA: neither goes first every time
        for name, log in (order if number % 2 == 0 else order[::-1]):
            out = work / "out.jsonl"
            summary = work / "summary.json"
            run(["batch", str(prompts), "-o", str(out), "--force", "-c", "64", "-q",
                 "--summary-json", str(summary)], environment(base_url, work, log))
            rates[name].append(json.loads(summary.read_text())["items_per_second"])
    return {name: statistics.median(r) for name, r in rates.items()}


def log_cost_per_row(work: Path, rows: int = 100_000) -> float:
    """Microseconds of CPU the usage log takes per batch item: building and queueing the
    row on the event loop, plus the writer's inserts (512 a transaction), all timed on
    one thread so that no other process's load is counted."""
    from llmcli.batch.accounting import RunAccounting
    from llmcli.batch.reader import Item
    from llmcli.core.chat import ChatResult
    from llmcli.usage import log
    from llmcli.usage.prices import load_table

    result = ChatResult(content="echo: x", finish_reason="stop", model="gpt-4o-mini",
                        usage={"prompt_tokens": 3, "completion_tokens": 2}, request_id="req_1")
    captured: list[tuple] = []
    sink = type("Sink", (), {"put": lambda self, row: captured.append(row)})()
    items = [Item(i, i, str(i), None) for i in range(rows)]
    body = {"model": "gpt-4o-mini"}
    with_log = RunAccounting(load_table(), log=sink)          # type: ignore[arg-type]
    without = RunAccounting(load_table())
    start = time.process_time()
    for item in items:
        without.settle(item, body, None, result, None, 1, 5)
    bare = time.process_time() - start
    start = time.process_time()
    for item in items:
        with_log.settle(item, body, None, result, None, 1, 5)
    queued = time.process_time() - start - bare
    db = log.connect(work / "rows.db")
    start = time.process_time()
    for i in range(0, rows, log.BATCH_ROWS):
        log.insert(db, captured[i:i + log.BATCH_ROWS])
    written = time.process_time() - start
    db.close()
    return (queued + written) / rows * 1e6


def dry_run(work: Path, items: int) -> tuple[float, float]:
    """(seconds, peak RSS MB) of `batch --dry-run` over ``items`` prompts."""
    prompts = work / f"dry-{items}.txt"
    with prompts.open("w") as f:
        for i in range(items):
            f.write(f"Summarise ticket {i}: the customer reports that the export fails\n")
    env = dict(os.environ, LLMCLI_MODEL="gpt-4o-mini", XDG_DATA_HOME=str(work / "data"))
    start = time.perf_counter()
    code = f"import sys, resource; from llmcli.__main__ import main; sys.argv=['llmcli','batch',{str(prompts)!r},'--dry-run','--max-tokens','200']\ntry:\n main()\nexcept SystemExit: pass\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rss_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dry", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"added to one-shot chat, min of {args.runs} fresh interpreters (ms):")
        for name, ms in path_cost(Path(tmp), args.runs).items():
            print(f"  {name:56} {ms:6.2f}")
    with tempfile.TemporaryDirectory() as tmp, MockOpenAIServer(api_key=KEY) as server:
        work = Path(tmp)
        shot = one_shot(server.base_url, work, args.runs)
        plain = shot["chat (log on)"]
        print(f"one-shot chat, median of {args.runs} (ms):")
        for name, ms in shot.items():
            print(f"  {name:24} {ms:7.1f}  ({ms - plain:+.1f})")
        rates = batch_rate(server.base_url, work, args.batch, args.rounds)
        on, off = rates["log on"], rates["log: false"]
        print(f"batch -c 64, {args.batch} prompts, median of {args.rounds} (items/s): "
              f"log on {on:.0f}, log: false {off:.0f}, difference {100 * (off - on) / off:+.1f} %")
        per_row = log_cost_per_row(work)
        print(f"usage log CPU per batch item: {per_row:.1f} us = {per_row * off / 1e4:.2f} % of "
              f"an item's time at {off:.0f} items/s")
    with tempfile.TemporaryDirectory() as tmp:
        for items in (100_000, args.dry):
            seconds, rss = dry_run(Path(tmp), items)
            print(f"batch --dry-run, {items:,} prompts: {seconds:.1f} s, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
