"""What a record's request fingerprint costs (issue 11): the time of one `jsonl` record
with it, the fingerprint alone, and resume's check of a 100,000-item input. Seconds,
on whatever machine runs it; compare the two figures of one run, side by side.

    .venv/bin/python bench/scripts/fingerprint_cost.py
"""

from __future__ import annotations

import os
import tempfile
import time
import timeit

from llmcli.batch import resume
from llmcli.batch.reader import Defaults, Item, read_items
from llmcli.batch.records import JsonlRecords, fingerprint
from llmcli.core.chat import ChatResult

BODY = {"model": "gpt-4o-mini", "temperature": 0, "messages": [
    {"role": "user", "content": "Summarise the following paragraph in one sentence: " + "x" * 200}]}
RESULT = ChatResult(content="y" * 300, finish_reason="stop", model="m", request_id="req",
                    usage={"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39})


def per_call(fn, n: int = 50_000) -> float:
    return min(timeit.repeat(fn, number=n, repeat=3)) / n


def main() -> None:
    records, item = JsonlRecords(["sk-test-0123456789abcdefWXYZ"]), Item(0, 1, "1", BODY)
    record = per_call(lambda: records.ok(item, RESULT, 1, 5))
    alone = per_call(lambda: fingerprint(BODY))
    print(f"jsonl record: {record * 1e6:.1f} us, of which the fingerprint {alone * 1e6:.1f} us "
          f"({100 * alone / record:.0f} %)")
    folder = tempfile.mkdtemp()
    source, out = os.path.join(folder, "in.txt"), os.path.join(folder, "out.jsonl")
    with open(source, "w") as f:
        f.writelines(f"prompt number {i}\n" for i in range(100_000))
    with open(out, "wb") as f:
        f.writelines(records.ok(it, RESULT, 1, 5) for it in read_items(source, "plain", Defaults()))
    started = time.perf_counter()
    state = resume.load(out, "jsonl")
    loaded = time.perf_counter()
    resume.check_unchanged(source, "plain", Defaults(), state, source)
    print(f"resume of 100,000 records: reading the output {loaded - started:.2f} s, "
          f"checking the fingerprints {time.perf_counter() - loaded:.2f} s")


if __name__ == "__main__":
    main()
