"""The commented config file that `llmcli config init` writes."""

TEMPLATE = """\
# llmcli configuration. Precedence, lowest first:
#   defaults < this file < OPENAI_API_KEY/OPENAI_BASE_URL < the chosen profile
#   < LLMCLI_* environment variables < command-line flags
# Every key is documented in docs/config.md. Unknown keys are an error.

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

# default_profile: local

profiles:
  local:
    # An OpenAI-compatible server on this machine (Ollama shown here).
    base_url: http://localhost:11434/v1
    model: llama3.2
"""
