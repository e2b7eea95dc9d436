"""An offline, OpenAI-compatible test server for llmcli's tests, benchmarks and users.

Standard library only. Start it in-process with ``MockOpenAIServer``, in a
child process with ``start_server_process``, or from a shell with
``python -m llmcli.testing --port 8765``.  Replies are deterministic:
``reply_for(messages)`` computes what the server will answer.  See
docs/test-server.md for directives, faults and the control API.
"""

from .config import DEFAULT_MODELS, ServerConfig
from .content import Answer, Directives, answer_for, count_tokens, parse_directives, \
    prompt_tokens, reply_for, stream_pieces
from .faults import Fault, parse_fault
from .process import ServerProcess, start_server_process
from .server import MockOpenAIServer
from .stats import mask_secret

__all__ = [
    "DEFAULT_MODELS", "Answer", "Directives", "Fault", "MockOpenAIServer", "ServerConfig",
    "ServerProcess", "answer_for", "count_tokens", "mask_secret", "parse_directives",
    "parse_fault", "prompt_tokens", "reply_for", "start_server_process", "stream_pieces",
]
