"""``python -m llmcli.testing``: run the OpenAI-compatible test server in the foreground.

Prints one line, ``listening on http://127.0.0.1:PORT/v1``, once the port is
bound (so a parent process can read it), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .config import DEFAULT_MODELS, ServerConfig
from .server import Listener

EPILOG = """\
Directives in the last user message (stripped from the echoed reply):
  #latency:MS  #chunks:N  #interval:MS  #keepalive  #fault:SPEC
  SPEC = STATUS|hang|drop|dropmid|nonjson|html|plain|detail|streamerror
         [@SECONDS | @ms:MILLIS | @date:SECONDS] [*COUNT]
Control API: GET /_control/stats, POST /_control/reset, POST /_control/faults.
See `llmcli docs test-server`.
"""


def _query_pair(text: str) -> tuple[str, str]:
    """Parse NAME=VALUE for --require-query."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; every flag maps to a ``ServerConfig`` field."""
    parser = argparse.ArgumentParser(
        prog="python -m llmcli.testing", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Offline OpenAI-compatible server that echoes prompts, for testing.")
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=8765, help="port to bind, 0 for any free port "
        "(default: %(default)s)")
    add("--model", dest="models", action="append", metavar="NAME",
        help=f"a model to serve; repeat for several (default: {', '.join(DEFAULT_MODELS)})")
    add("--api-key", metavar="KEY", help="accept only this key (default: any non-empty key)")
    add("--auth-header", metavar="NAME", help="read the raw key from this header instead of "
        "'Authorization: Bearer' (e.g. api-key, Azure style)")
    add("--require-query", action="append", type=_query_pair, default=[], metavar="NAME=VALUE",
        help="require a query parameter on /v1 requests, e.g. api-version=2024-06-01; repeatable")
    add("--latency-ms", type=float, default=0, metavar="MS",
        help="delay before every /v1 answer (default: 0)")
    add("--stream-interval-ms", type=float, default=0, metavar="MS",
        help="pause between stream events (default: 0)")
    add("--ratelimit-headers", action="store_true", help="send x-ratelimit-* headers")
    add("--echo-key", action="store_true", help="echo the raw key presented back in error "
        "messages, error bodies, x-request-id and in-stream errors (for leak tests)")
    add("--certfile", metavar="PATH", help="PEM certificate (chain) to serve HTTPS")
    add("--keyfile", metavar="PATH", help="PEM private key for --certfile (if not inside it)")
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed arguments into a ``ServerConfig``."""
    return ServerConfig(
        host=args.host, port=args.port, models=tuple(args.models or DEFAULT_MODELS),
        api_key=args.api_key, auth_header=args.auth_header,
        required_query=dict(args.require_query), latency_ms=args.latency_ms,
        stream_interval_ms=args.stream_interval_ms, ratelimit_headers=args.ratelimit_headers,
        echo_key=args.echo_key,
        certfile=args.certfile, keyfile=args.keyfile,
    )


async def serve(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, announcing the URL on stdout first."""
    listener = Listener(config)
    await listener.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on {listener.base_url}", flush=True)
    await stop.wait()
    await listener.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        asyncio.run(serve(config))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
