"""The `llmcli batch` benchmark (issue 3, section 8): throughput next to hand-written
peers in the same run, and peak memory for 1,000 and 100,000 prompts.

    python bench/batch_bench.py            # the full run, a few minutes
    python bench/batch_bench.py --quick    # fewer runs, 20,000 prompts for the RSS row

Every client runs in its own process against the project's test server (also its own
process, so each gets a core of a two-core machine). Runs are interleaved, so a noisy
minute hurts every client alike; figures are medians with [min-max]. `llmcli batch`
is timed by its own `--summary-json` (first request to last record), the peers by
their own clock around the same span; process start-up is left out of all of them.

Import it to get the rows: ``run_benchmark(quick=True)`` returns a list of dicts and
``markdown(rows)`` the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.batch_peers import API_KEY, MODEL, prompt  # noqa: E402
from llmcli.testing import start_server_process  # noqa: E402

PROMPTS = 2000
CONCURRENCY = 64
WIDE_PROMPTS = 8000     # concurrency 256: 2,000 prompts are only eight rounds, mostly ramp-up
PEERS = ("aiohttp", "httpx", "openai")
LABELS = {
    "llmcli": "llmcli batch (aiohttp transport)",
    "llmcli-httpx": "llmcli batch --transport httpx",
    "aiohttp": "raw aiohttp + semaphore",
    "httpx": "httpx.AsyncClient + semaphore (pool of 64)",
    "openai": "openai AsyncOpenAI + gather + semaphore",
}


def clean_env() -> dict[str, str]:
    """The environment for every client: no user config, no proxies, a bench key."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "LLMCLI_")) and "proxy" not in k.lower()}
    env.update(OPENAI_API_KEY=API_KEY, PYTHONPATH=str(ROOT),
               XDG_CONFIG_HOME=str(Path(tempfile.gettempdir()) / "llmcli-bench-no-config"))
    return env


def write_prompts(folder: Path, count: int) -> Path:
    """The input file: ``count`` plain-text prompts, the same the peers send."""
    path = folder / f"prompts-{count}.txt"
    if not path.exists():
        with path.open("w") as f:
            f.writelines(prompt(n) + "\n" for n in range(count))
    return path


def run_measured(command: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """Run ``command``; return its exit status, wall seconds, peak RSS (KB), stdout."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        return process.returncode, wall, usage.ru_maxrss, out.read().decode()


def llmcli_run(url: str, path: Path, concurrency: int, folder: Path,
               transport: str = "aiohttp") -> dict[str, Any]:
    """One `llmcli batch` run; its figures from --summary-json, RSS from wait4."""
    summary, output = folder / "summary.json", folder / "out.jsonl"
    command = [sys.executable, "-m", "llmcli", "batch", str(path), "-o", str(output), "--force",
               "-q", "-c", str(concurrency), "--base-url", url, "-m", MODEL,
               "--transport", transport, "--summary-json", str(summary)]
    code, wall, rss, _ = run_measured(command, clean_env())
    data = json.loads(summary.read_text()) if summary.exists() else {}
    if code != 0 or data.get("ok") != data.get("run"):
        raise RuntimeError(f"llmcli batch failed (exit {code}): {data}")
    return {"rps": data["items_per_second"], "wall": wall, "rss_kb": rss}


def peer_run(kind: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    """One run of a peer script from bench/batch_peers.py."""
    command = [sys.executable, str(ROOT / "bench" / "batch_peers.py"), kind, url, str(count),
               str(concurrency)]
    code, wall, rss, out = run_measured(command, clean_env())
    if code != 0:
        raise RuntimeError(f"{kind} peer failed (exit {code}): {out!r}")
    return dict(json.loads(out), wall=wall, rss_kb=rss)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def measure(url: str, clients: list[str], runs: int, concurrency: int, folder: Path,
            count: int = PROMPTS) -> dict[str, dict[str, float]]:
    """Interleaved runs of each client over ``count`` prompts; req/s spread per client."""
    path = write_prompts(folder, count)
    seen: dict[str, list[float]] = {c: [] for c in clients}
    for _ in range(runs):
        for client in clients:
            if client.startswith("llmcli"):
                transport = "httpx" if client == "llmcli-httpx" else "aiohttp"
                result = llmcli_run(url, path, concurrency, folder, transport)
            else:
                result = peer_run(client, url, count, concurrency)
            seen[client].append(result["rps"])
    return {c: spread(v) for c, v in seen.items()}


def run_benchmark(quick: bool = False, runs: Optional[int] = None) -> list[dict[str, Any]]:
    """Every figure, as rows: ``{"table", "client", "metric", "median", "min", "max", ...}``."""
    runs = runs or (2 if quick else 5)
    slow_runs = 1 if quick else 2       # the clients that take ~10 s a run
    big = 20_000 if quick else 100_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, \
            start_server_process(["--port", "0"]) as fast, \
            start_server_process(["--port", "0", "--latency-ms", "100"]) as slow:
        folder = Path(tmp)
        ceiling = [peer_run("ceiling", fast.base_url, 20_000, 32)["rps"] for _ in range(3)]
        rows.append(dict(table="server", client="test server (pipelined raw client)",
                         metric="req/s", **spread(ceiling)))
        zero = measure(fast.base_url, ["llmcli", "aiohttp"], runs, CONCURRENCY, folder)
        zero |= measure(fast.base_url, ["openai", "httpx", "llmcli-httpx"], slow_runs,
                        CONCURRENCY, folder)
        rows += [dict(table="0ms", client=c, metric="req/s", **s) for c, s in zero.items()]
        hundred = measure(slow.base_url, ["llmcli", "aiohttp"], runs, CONCURRENCY, folder)
        hundred |= measure(slow.base_url, ["openai", "httpx"], 1, CONCURRENCY, folder)
        rows += [dict(table="100ms", client=c, metric="req/s", ideal=CONCURRENCY / 0.1, **s)
                 for c, s in hundred.items()]
        wide = measure(slow.base_url, ["llmcli", "aiohttp"], runs, 256, folder, WIDE_PROMPTS)
        rows += [dict(table="100ms-256", client=c, metric="req/s", ideal=256 / 0.1, **s)
                 for c, s in wide.items()]
        for count in (1000, big):
            result = llmcli_run(fast.base_url, write_prompts(folder, count), CONCURRENCY, folder)
            rows.append(dict(table="rss", client="llmcli", metric="peak RSS MB", prompts=count,
                             median=result["rss_kb"] / 1024, rps=result["rps"]))
    return rows


def _fmt(row: dict[str, Any]) -> str:
    return f"{row['median']:,.0f} [{row['min']:,.0f}–{row['max']:,.0f}]"


def _by(rows: list[dict[str, Any]], table: str) -> dict[str, dict[str, Any]]:
    return {r["client"]: r for r in rows if r["table"] == table}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The tables and the targets, as markdown."""
    zero, hundred, wide = _by(rows, "0ms"), _by(rows, "100ms"), _by(rows, "100ms-256")
    raw, sdk = zero["aiohttp"]["median"], zero["openai"]["median"]
    server = rows[0]
    out = [f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
           f"Python {platform.python_version()}. Test server ceiling: {_fmt(server)} req/s "
           f"(pipelined raw-socket client, {server['runs']} runs).", "",
           f"| client, {PROMPTS:,} prompts, concurrency {CONCURRENCY} | 0 ms latency, req/s "
           "median [min–max] | vs raw aiohttp | 100 ms latency, req/s | % of ideal 640 |",
           "|---|---:|---:|---:|---:|"]
    for client, label in LABELS.items():
        if client not in zero:
            continue
        z, h = zero[client], hundred.get(client)
        late = f"{_fmt(h)} | {100 * h['median'] / h['ideal']:.0f} %" if h else "– | –"
        out.append(f"| {label} | {_fmt(z)} | {z['median'] / raw:.2f}× | {late} |")
    out += ["", f"| {WIDE_PROMPTS:,} prompts, concurrency 256, 100 ms latency | req/s median "
            "[min–max] | % of ideal 2,560 | vs raw aiohttp |", "|---|---:|---:|---:|"]
    out += [f"| {LABELS[c]} | {_fmt(r)} | {100 * r['median'] / r['ideal']:.0f} % | "
            f"{r['median'] / wide['aiohttp']['median']:.2f}× |" for c, r in wide.items()]
    rss = [r for r in rows if r["table"] == "rss"]
    out += ["", "| llmcli batch, 0 ms, concurrency 64 | peak RSS | req/s |", "|---|---:|---:|"]
    out += [f"| {r['prompts']:,} prompts | {r['median']:.1f} MB | {r['rps']:,.0f} |" for r in rss]
    ours = zero["llmcli"]["median"]
    checks = [
        (f"0 ms: llmcli ≥ 0.7× raw aiohttp ({ours / raw:.2f}×)", ours >= 0.7 * raw),
        (f"0 ms: llmcli ≥ 3× AsyncOpenAI ({ours / sdk:.1f}×)", ours >= 3 * sdk),
        (f"100 ms, c=64: llmcli ≥ 90 % of ideal "
         f"({100 * hundred['llmcli']['median'] / 640:.0f} %)", hundred["llmcli"]["median"] >= 576),
        (f"100 ms, c=256: llmcli ≥ 0.9× raw aiohttp "
         f"({wide['llmcli']['median'] / wide['aiohttp']['median']:.2f}×)",
         wide["llmcli"]["median"] >= 0.9 * wide["aiohttp"]["median"]),
        (f"RSS: {rss[-1]['prompts']:,} prompts ≤ 1,000 prompts + 20 MB "
         f"(+{rss[-1]['median'] - rss[0]['median']:.1f} MB)",
         rss[-1]["median"] - rss[0]["median"] <= 20),
    ]
    out += [""] + [f"- {'PASS' if ok else 'FAIL'} {text}" for text, ok in checks]
    return "\n".join(out)


def main() -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, 20,000 prompts for RSS")
    parser.add_argument("--runs", type=int, help="runs of each fast client (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    rows = run_benchmark(quick=args.quick, runs=args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
