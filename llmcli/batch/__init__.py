"""The batch engine behind `llmcli batch`: a file of prompts in, one record per input out.

No terminal, no Typer, no exit: the CLI (llmcli/cli/batch.py) renders progress and the
summary and maps the outcome to an exit code.

- :mod:`.ids`       a compact set of id hashes (8 bytes an id), for duplicates and resume
- :mod:`.reader`    streamed input: plain / JSONL / OpenAI Batch requests -> items
- :mod:`.records`   output records: llmcli JSONL or OpenAI Batch output lines
- :mod:`.resume`    reading an earlier run's output: what is done, what to redo
- :mod:`.writer`    whole-line writes and the bounded reorder buffer
- :mod:`.limiter`   rpm/tpm budgets, x-ratelimit-* headers, 429 slow-down
- :mod:`.engine`    the asyncio scheduler: workers, retries, fail-fast, interrupt
- :mod:`.job`       putting it together: stdin spooling, pre-pass, output file
- :mod:`.progress`  progress and summary as text (the CLI decides where it goes)
"""
