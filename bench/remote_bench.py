"""The `llmcli batch --remote` benchmark (issue 10): ratios measured side by side.

    python bench/remote_bench.py            # about a minute on the project's machine
    python bench/remote_bench.py --lines 200000   # a shorter memory row

1. split + upload: peak RSS of `--remote --detach` for N (1,000,000) lines next to 1,000
   lines (target: within +20 MB), against the test server in its own process, with its
   batches held in `validating` so the server does not compete for the CPU;
2. upload throughput: llmcli's streamed multipart upload of one ~48 MB file next to
   `curl -F` uploading the same file to the same server (target: >= 0.5x);
3. merging 1,000,000 result lines into OUT through the record writer (>= 100,000 lines/s,
   per CPU second: the machine is shared, and wall time measures the neighbours), next
   to the floor of decoding each line and encoding a small record;
4. CPU while polling: a `--resume` waiting on a batch that does not end, CPU seconds
   over wall seconds once it is waiting (target: < 1 %).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmcli.testing import start_server_process  # noqa: E402

KEY = "sk-bench-0123456789abcdef"


def knobs(base: str, **values: object) -> None:
    root = base.rsplit("/v1", 1)[0]
    request = urllib.request.Request(root + "/_control/batches", data=json.dumps(values).encode(),
                                     method="POST")
    urllib.request.urlopen(request).read()


def env_for(base: str) -> dict[str, str]:
    env = dict(os.environ, OPENAI_BASE_URL=base, OPENAI_API_KEY=KEY, LLMCLI_MODEL="test-model",
               NO_PROXY="127.0.0.1")
    env.pop("LLMCLI_REMOTE_KILL_AT", None)
    return env


def run_rss(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one llmcli process."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "llmcli", *args], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"llmcli failed: {child.stderr.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def memory_row(base: str, folder: Path, lines: int) -> dict[str, float]:
    knobs(base, validating_seconds=3600)
    rows = {}
    for n in (1000, lines):
        source = folder / f"in-{n}.txt"
        with open(source, "w") as f:
            f.writelines(f"question number {i} about the benchmark\n" for i in range(n))
        out = folder / f"out-{n}.jsonl"
        rss, wall = run_rss(["batch", str(source), "-o", str(out), "--remote", "--detach"],
                            env_for(base))
        rows[n] = {"rss_mb": rss, "seconds": wall, "lines_per_s": n / wall}
        source.unlink()
    return rows


def upload_row(base: str, folder: Path) -> dict[str, float]:
    from llmcli.batch.remote.api import BatchAPI
    from llmcli.core.options import ClientOptions

    path = folder / "upload.jsonl"
    line = json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "test-model", "messages": [
                           {"role": "user", "content": "y" * 400}]}}) + "\n"
    with open(path, "w") as f:
        f.writelines(line for _ in range(48_000_000 // len(line)))
    size = path.stat().st_size
    llmcli_s, curl_s = [], []
    with BatchAPI(ClientOptions(base_url=base, api_key=KEY)) as api:
        for _ in range(3):
            started = time.perf_counter()
            api.upload(str(path), "bench.jsonl")
            llmcli_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {KEY}",
                            "-F", "purpose=batch", "-F", f"file=@{path}", base + "/files"],
                           check=True)
            curl_s.append(time.perf_counter() - started)
    path.unlink()
    mb = size / 1e6
    return {"mb": mb, "llmcli_mb_s": mb / min(llmcli_s), "curl_mb_s": mb / min(curl_s)}


def merge_row(folder: Path, lines: int) -> dict[str, float]:
    from llmcli.batch.remote.merging import write_part
    from llmcli.batch.remote.runner import RemoteSpec, Runner
    from llmcli.batch.remote.state import Part

    source, results = folder / "merge-in.txt", folder / "merge-results.jsonl"
    with open(source, "w") as f:
        f.writelines(f"question {i}\n" for i in range(1, lines + 1))
    with open(results, "w") as f:
        for i in range(1, lines + 1):
            body = {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant",
                                                         "content": f"echo: question {i}"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}}
            f.write(json.dumps({"id": f"batch_req_{i}", "custom_id": str(i), "response": {
                "status_code": 200, "request_id": f"req_{i}", "body": body}, "error": None}) + "\n")
    from llmcli.usage.prices import load_table

    # priced, as a real run is: each record's cost is computed in the merge loop
    runner = Runner(RemoteSpec(str(source), str(folder / "merged.jsonl"), prices=load_table()),
                    api=None)
    runner.prepare()
    runner.open_output()
    part = Part(number=1, ranges=[[1, lines]], lines=lines, bytes=0, status="completed")
    started, cpu = time.perf_counter(), time.process_time()
    stats = write_part(part, [str(results)], source=runner.spec.input, fmt=runner.format,
                       done=runner.existing.done, records=runner._records,
                       endpoint=runner.endpoint, write=runner._write, prices=runner.spec.prices)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    runner.close()
    assert stats.ok == lines
    floor = _floor(results, lines)
    return {"lines": lines, "seconds": seconds, "lines_per_s": lines / seconds,
            "lines_per_cpu_s": lines / cpu, "floor_lines_per_cpu_s": floor}


def _floor(results: Path, lines: int) -> float:
    """Lines per CPU second of the least any merge must do: decode each result line and
    encode a small record, nothing else."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    started = time.process_time()
    with open(results, "rb") as f:
        for raw in f:
            obj = json.loads(raw.decode())
            encode({"id": obj["custom_id"], "content": obj["response"]["body"]["choices"][0]
                    ["message"]["content"], "usage": obj["response"]["body"]["usage"]}).encode()
    return lines / (time.process_time() - started)


def polling_row(base: str, folder: Path, seconds: float = 12.0) -> dict[str, float]:
    knobs(base, validating_seconds=3600)
    source = folder / "poll.txt"
    source.write_text("a\nb\n")
    out = folder / "poll.jsonl"
    env = env_for(base)
    subprocess.run([sys.executable, "-m", "llmcli", "batch", str(source), "-o", str(out),
                    "--remote", "--detach"], env=env, cwd=ROOT, check=True, capture_output=True)
    child = subprocess.Popen([sys.executable, "-m", "llmcli", "batch", str(source), "-o",
                              str(out), "--remote", "--resume", "--poll-interval", "1"],
                             env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)     # start-up and the first polls are not waiting
    cpu0, wall0 = _cpu(child.pid), time.perf_counter()
    time.sleep(seconds)
    cpu1, wall1 = _cpu(child.pid), time.perf_counter()
    child.terminate()
    child.wait()
    return {"cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0), "window_s": wall1 - wall0,
            "poll_interval_s": 1.0}


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--merge-lines", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="llmcli-remote-bench-"))
    server = start_server_process(["--port", "0"])
    try:
        base = server.base_url
        memory = memory_row(base, folder, args.lines)
        upload = upload_row(base, folder) if shutil.which("curl") else None
        merge = merge_row(folder, args.merge_lines)
        polling = polling_row(base, folder)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    small, big = memory[1000], memory[args.lines]
    print(f"split+upload peak RSS: 1,000 lines {small['rss_mb']:.1f} MB; {args.lines:,} lines "
          f"{big['rss_mb']:.1f} MB ({big['rss_mb'] - small['rss_mb']:+.1f} MB), "
          f"{big['lines_per_s']:,.0f} lines/s  -> {'PASS' if big['rss_mb'] - small['rss_mb'] <= 20 else 'FAIL'} (<= +20 MB)")
    if upload:
        ratio = upload["llmcli_mb_s"] / upload["curl_mb_s"]
        print(f"upload {upload['mb']:.0f} MB: llmcli {upload['llmcli_mb_s']:.0f} MB/s, curl -F "
              f"{upload['curl_mb_s']:.0f} MB/s, ratio {ratio:.2f}x  -> {'PASS' if ratio >= 0.5 else 'FAIL'} (>= 0.5x)")
    rate = merge["lines_per_cpu_s"]
    print(f"merge {merge['lines']:,} result lines: {merge['seconds']:.2f} s wall "
          f"({merge['lines_per_s']:,.0f} lines/s), {rate:,.0f} lines per CPU second  -> "
          f"{'PASS' if rate >= 100_000 else 'FAIL'} (>= 100,000); floor (decode + encode only, "
          f"same run) {merge['floor_lines_per_cpu_s']:,.0f} lines per CPU second, merge at "
          f"{rate / merge['floor_lines_per_cpu_s']:.2f}x of it")
    print(f"polling (interval 1 s, {polling['window_s']:.0f} s window): CPU {polling['cpu_percent']:.2f} %"
          f"  -> {'PASS' if polling['cpu_percent'] < 1 else 'FAIL'} (< 1 %)")


if __name__ == "__main__":
    main()
