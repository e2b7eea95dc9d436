"""Finding the batches a job created but did not record (a kill between the create
request and the state save), so that resume adopts them instead of paying twice.

With metadata (OpenAI): the batches tagged ``llmcli_job`` = the job id, by
``llmcli_part``. Without (Anthropic Message Batches): the oldest batch not yet known to
the job, created no earlier than ``CLOCK_SLACK`` before the part's create began, with
as many requests as the part. Batches are listed newest first, page after page, back to
``LOOKUP_SLACK`` before the job began.
"""

from __future__ import annotations

from typing import Any

from .state import JobState

LOOKUP_SLACK = 600.0      # list batches back to this long before the job began (clock skew)
CLOCK_SLACK = 60.0        # an untagged batch may look this much older than its create


def find(api: Any, state: JobState) -> dict[int, dict[str, Any]]:
    """This job's batches on the server, by part number."""
    oldest = state.created_at - LOOKUP_SLACK
    recent = []
    for batch in api.each_batch():
        created = batch.get("created_at")
        if isinstance(created, (int, float)) and created < oldest:
            break
        recent.append(batch)
    return tagged(recent, state) if api.has_metadata else untagged(recent, state)


def tagged(recent: list[dict[str, Any]], state: JobState) -> dict[int, dict[str, Any]]:
    """The batches whose metadata names this job, by part (the newest of a part wins)."""
    found: dict[int, dict[str, Any]] = {}
    for batch in recent:
        meta = batch.get("metadata")
        if isinstance(meta, dict) and meta.get("llmcli_job") == state.job_id:
            try:
                found.setdefault(int(str(meta.get("llmcli_part"))), batch)
            except ValueError:
                continue
    return found


def untagged(recent: list[dict[str, Any]], state: JobState) -> dict[int, dict[str, Any]]:
    """Each part in ``creating`` matched by creation time and request count."""
    known = {p.batch_id for p in state.parts if p.batch_id}
    found: dict[int, dict[str, Any]] = {}
    for part in state.parts:
        if part.stage != "creating" or part.creating_at is None:
            continue
        for batch in reversed(recent):           # oldest first
            created = batch.get("created_at")
            total = (batch.get("request_counts") or {}).get("total")
            if (batch.get("id") not in known and isinstance(created, (int, float))
                    and created >= part.creating_at - CLOCK_SLACK and total == part.lines):
                found[part.number] = batch
                known.add(batch.get("id"))
                break
    return found
