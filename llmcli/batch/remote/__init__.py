"""`llmcli batch --remote`: the same input and records, run on the provider's Batch API.

- :mod:`.state`    the job state file beside OUT (``OUT.remote.json``), written atomically
- :mod:`.parts`    input items -> Batch API request lines, split into parts on disk
- :mod:`.api`      the OpenAI Files and Batches endpoints over httpx (streamed upload)
- :mod:`.anthropic` Anthropic Message Batches behind the same interface
- :mod:`.providers` which of the two serves a profile's API dialect
- :mod:`.lookup`   finding a batch that was created but not recorded
- :mod:`.results`  result lines (output and error files) -> llmcli's records
- :mod:`.runner`   submit, find, wait, download and merge: the exactly-once logic

Nothing here prints or exits: the CLI (llmcli/cli/remote.py, llmcli/cli/batches.py) renders and maps exit codes.
The design (docs/batch.md, "Remote"): the state file is saved *before* every step that
creates remote state or costs money, and every batch carries ``metadata`` naming its job
and part, so a run killed at any moment is resumed without creating a second batch.
"""
