"""llmcli: a fast, scriptable command-line client for OpenAI-compatible LLM APIs."""

__version__ = "0.1.0"
