"""The clients `llmcli batch` is measured against, each as small as its kind allows, plus
a pipelining client that measures the test server's own ceiling.

    python bench/batch_peers.py KIND BASE_URL PROMPTS CONCURRENCY

KIND is ``aiohttp`` (raw aiohttp + semaphore), ``httpx`` (httpx.AsyncClient + semaphore),
``openai`` (AsyncOpenAI + asyncio.gather + semaphore) or ``ceiling``. Each sends the same
prompts as the benchmark's input file, keeps every reply's content, and prints one JSON
line: ``{"rps": ..., "ok": ..., "seconds": ...}``, timed from the first request to the
last reply (as `llmcli batch --summary-json` times itself).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Awaitable, Callable

API_KEY = "sk-bench-0000000000000000"
MODEL = "test-model"


def prompt(n: int) -> str:
    """The n-th prompt (0-based), the same text as line n+1 of the benchmark input."""
    return f"prompt number {n} of the batch benchmark"


def body(n: int) -> dict[str, Any]:
    """The request body for prompt ``n``."""
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt(n)}]}


async def gather_limited(count: int, limit: int, one: Callable[[int], Awaitable[str]]) -> list[str]:
    """asyncio.gather over every prompt, a semaphore holding ``limit`` in flight."""
    semaphore = asyncio.Semaphore(limit)

    async def guarded(n: int) -> str:
        async with semaphore:
            return await one(n)
    return await asyncio.gather(*(guarded(n) for n in range(count)))


async def run_aiohttp(url: str, count: int, limit: int) -> list[str]:
    """Raw aiohttp: one session, a connector sized to the concurrency."""
    import aiohttp

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:
        async def one(n: int) -> str:
            async with session.post(f"{url}/chat/completions", json=body(n), headers=headers) as r:
                r.raise_for_status()
                return (await r.json())["choices"][0]["message"]["content"]
        return await gather_limited(count, limit, one)


async def run_httpx(url: str, count: int, limit: int) -> list[str]:
    """Plain httpx.AsyncClient with a pool of ``limit`` connections."""
    import httpx

    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        async def one(n: int) -> str:
            r = await client.post("/chat/completions", json=body(n))
            r.raise_for_status()
            return r.json()["choices"][0]["message"]["content"]
        return await gather_limited(count, limit, one)


async def run_openai(url: str, count: int, limit: int) -> list[str]:
    """The openai SDK as its docs show it: AsyncOpenAI, gather, a semaphore."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0)

    async def one(n: int) -> str:
        reply = await client.chat.completions.create(model=MODEL, messages=body(n)["messages"])
        return reply.choices[0].message.content or ""
    try:
        return await gather_limited(count, limit, one)
    finally:
        await client.close()


async def run_ceiling(url: str, count: int, limit: int) -> list[str]:
    """The server's ceiling: ``limit`` connections, each pipelining 32 requests at a
    time over raw sockets, so the client costs far less than the server."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    raw = json.dumps(body(0)).encode()
    request = (f"POST {parts.path}/chat/completions HTTP/1.1\r\nhost: {parts.netloc}\r\n"
               f"authorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(raw)}\r\n\r\n").encode() + raw
    per_connection = count // limit

    async def connection() -> int:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        done = 0
        while done < per_connection:
            batch = min(32, per_connection - done)
            writer.write(request * batch)
            for _ in range(batch):
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            done += batch
        writer.close()
        return done
    done = await asyncio.gather(*(connection() for _ in range(limit)))
    return ["ok"] * sum(done)


KINDS: dict[str, Callable[[str, int, int], Awaitable[list[str]]]] = {
    "aiohttp": run_aiohttp, "httpx": run_httpx, "openai": run_openai, "ceiling": run_ceiling}


def main(argv: list[str]) -> int:
    """Run one client and print its figures as JSON."""
    kind, url, count, limit = argv[0], argv[1], int(argv[2]), int(argv[3])
    started = time.perf_counter()
    replies = asyncio.run(KINDS[kind](url, count, limit))
    seconds = time.perf_counter() - started
    ok = sum(1 for r in replies if r)
    print(json.dumps({"rps": ok / seconds, "ok": ok, "seconds": seconds}))
    return 0 if ok == len(replies) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
