"""Start-up of `llmcli chat hello` per dialect, against the test server, same run.

    python bench/scripts/dialect_startup.py [RUNS]

Runs the real CLI as a child process RUNS times per dialect (default 15), interleaved,
and prints the best and median wall time of each and their difference from the default
dialect. The server runs in this process; one request per run, so the figure is
start-up + one local round trip, which is the same for every dialect.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from llmcli.testing import MockOpenAIServer

KEY = "sk-bench-0123456789abcdef"


def main(runs: int) -> None:
    with MockOpenAIServer(api_key=KEY) as server:
        bases = {"openai-chat": server.base_url, "openai-responses": server.base_url,
                 "anthropic": server.base_url, "gemini": server.base_url[:-3] + "/v1beta"}
        times: dict[str, list[float]] = {api: [] for api in bases}
        for _ in range(runs):
            for api, base in bases.items():
                env = dict(os.environ, LLMCLI_API=api, LLMCLI_BASE_URL=base,
                           LLMCLI_API_KEY=KEY, LLMCLI_MODEL="test-model")
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "llmcli", "chat", "hello"], env=env,
                               check=True, capture_output=True)
                times[api].append(time.perf_counter() - started)
    base_min = min(times["openai-chat"])
    for api, seen in times.items():
        print(json.dumps({"api": api, "best_ms": round(min(seen) * 1000, 1),
                          "median_ms": round(statistics.median(seen) * 1000, 1),
                          "best_vs_default_ms": round((min(seen) - base_min) * 1000, 1)}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
