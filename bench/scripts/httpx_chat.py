"""The bare baseline: python + httpx, one POST, print the reply. OPENAI_BASE_URL,
OPENAI_API_KEY and LLMCLI_MODEL say where and what; the prompt is argv[1]."""

import os
import sys

import httpx

response = httpx.post(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
    json={"model": os.environ["LLMCLI_MODEL"],
          "messages": [{"role": "user", "content": sys.argv[1]}]},
)
response.raise_for_status()
print(response.json()["choices"][0]["message"]["content"])
