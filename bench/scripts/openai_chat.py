"""python + the openai SDK, one chat completion, print the reply. The SDK reads
OPENAI_BASE_URL and OPENAI_API_KEY itself; the model is LLMCLI_MODEL, the prompt argv[1]."""

import os
import sys

from openai import OpenAI

client = OpenAI()
reply = client.chat.completions.create(
    model=os.environ["LLMCLI_MODEL"], messages=[{"role": "user", "content": sys.argv[1]}])
print(reply.choices[0].message.content)
