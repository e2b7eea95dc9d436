"""The commented config file that `llmcli config init` writes.

Every provider example under ``profiles`` is a block of lines starting ``  # `` (the
profile's name, then its keys indented below it): deleting that prefix from a block
gives a working profile. Optional keys inside a block stay commented once more.
tests/test_providers.py uncomments each block and loads it, so no example can rot.
docs/providers.md says more about each provider.
"""

TEMPLATE = """\
# llmcli configuration. Precedence, lowest first:
#   defaults < this file < OPENAI_API_KEY/OPENAI_BASE_URL < the chosen profile
#   < LLMCLI_* environment variables < command-line flags
# Every key is documented in `llmcli docs config`. Unknown keys are an error.

# base_url: https://api.openai.com/v1
# model: gpt-4o-mini

# The API key: prefer api_key_env (the name of an environment variable) or
# api_key_cmd (a command that prints the key) over writing the key here.
# api_key_env: OPENAI_API_KEY
# api_key_cmd: pass show openai/api-key

# timeout: 600          # read timeout per attempt, seconds
# connect_timeout: 10
# max_time: 0           # total budget across all retries, seconds (0: none)
# max_retries: 3
# temperature: 0.7
# max_tokens: 1024
# params: {seed: 42}    # extra body fields sent with every request
# keep_last_conversation: true   # false: chat -c/--continue keeps nothing on disk

# Networks: a proxy (HTTPS_PROXY/HTTP_PROXY/NO_PROXY also work), a CA bundle for a
# server or proxy with a private CA, or the operating system's trust store for a
# corporate proxy that re-signs TLS (needs: pip install 'llmcli[truststore]').
# proxy: http://proxy.example.com:3128
# ca_bundle: /etc/ssl/certs/corp-ca.pem
# system_trust: true

# default_profile: local

# Profiles: pick one with -p NAME (llmcli chat -p groq "hi"). To use an example
# below, delete the leading "# " from its lines.
profiles:
  local:
    # Ollama on this machine (ollama serve; ollama pull llama3.2). No key needed.
    base_url: http://localhost:11434/v1
    model: llama3.2

  # OpenAI, as a profile of its own (the top level above uses it by default).
  # openai:
  #   base_url: https://api.openai.com/v1
  #   api_key_env: OPENAI_API_KEY
  #   model: gpt-4o-mini

  # Azure OpenAI: put your resource and deployment names in base_url; the key goes
  # in the api-key header, and every request carries ?api-version=...
  # azure:
  #   base_url: https://YOUR-RESOURCE.openai.azure.com/openai/deployments/YOUR-DEPLOYMENT
  #   api_key_env: AZURE_OPENAI_API_KEY
  #   auth_header: api-key
  #   auth_scheme: ""
  #   query: {api-version: "2024-10-21"}
  #   model: YOUR-DEPLOYMENT

  # vLLM (vllm serve MODEL; add --api-key to require one).
  # vllm:
  #   base_url: http://localhost:8000/v1
  #   model: Qwen/Qwen2.5-7B-Instruct
  #   # api_key_env: VLLM_API_KEY

  # llama.cpp's llama-server (llama-server -m model.gguf); it serves one model,
  # whatever name is sent.
  # llamacpp:
  #   base_url: http://localhost:8080/v1
  #   model: local

  # LM Studio's local server (Developer tab, or lms server start).
  # lmstudio:
  #   base_url: http://localhost:1234/v1
  #   model: qwen2.5-7b-instruct

  # OpenRouter: many providers' models behind one key. The two headers are optional
  # (they name your app on openrouter.ai).
  # openrouter:
  #   base_url: https://openrouter.ai/api/v1
  #   api_key_env: OPENROUTER_API_KEY
  #   model: openai/gpt-4o-mini
  #   # headers: {HTTP-Referer: https://example.com, X-Title: my-script}

  # Groq.
  # groq:
  #   base_url: https://api.groq.com/openai/v1
  #   api_key_env: GROQ_API_KEY
  #   model: llama-3.3-70b-versatile

  # DeepSeek.
  # deepseek:
  #   base_url: https://api.deepseek.com
  #   api_key_env: DEEPSEEK_API_KEY
  #   model: deepseek-v4-flash

  # Mistral.
  # mistral:
  #   base_url: https://api.mistral.ai/v1
  #   api_key_env: MISTRAL_API_KEY
  #   model: mistral-small-latest

  # Anthropic, natively (the Messages API): x-api-key and anthropic-version headers,
  # base_url https://api.anthropic.com/v1, max_tokens 4096 unless set.
  # anthropic:
  #   api: anthropic
  #   api_key_env: ANTHROPIC_API_KEY
  #   model: claude-sonnet-4-5
  #   # max_tokens: 8192

  # Google Gemini, natively (generateContent): base_url
  # https://generativelanguage.googleapis.com/v1beta, the key in x-goog-api-key.
  # google:
  #   api: gemini
  #   api_key_env: GEMINI_API_KEY
  #   model: gemini-2.5-flash
  #   # auth_query: key     # send the key as ?key=... instead of the header

  # OpenAI's Responses API (also served by vLLM, Ollama, llama.cpp, LM Studio).
  # responses:
  #   api: openai-responses
  #   api_key_env: OPENAI_API_KEY
  #   model: gpt-4.1-mini

  # Google Gemini, through its OpenAI-compatible endpoint.
  # gemini:
  #   base_url: https://generativelanguage.googleapis.com/v1beta/openai
  #   api_key_env: GEMINI_API_KEY
  #   model: gemini-2.5-flash

  # A server behind a corporate network: extra headers, default body fields, a
  # private CA or the OS trust store, and a proxy.
  # corp:
  #   base_url: https://llm.internal.example.com/v1
  #   api_key_cmd: pass show corp/llm-key
  #   model: corp-chat
  #   headers: {X-Team: data}
  #   params: {top_p: 0.9}
  #   ca_bundle: /etc/ssl/certs/corp-ca.pem
  #   # system_trust: true
  #   proxy: http://proxy.internal.example.com:3128
"""
