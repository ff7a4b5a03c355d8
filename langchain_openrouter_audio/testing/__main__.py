"""The local OpenRouter server for your own code, from a shell.

    python -m langchain_openrouter_audio.testing [--port PORT] [--api-key KEY] [--read-timeout S]

It listens on 127.0.0.1 (a free port, or ``--port``), answers like a model would with the
spoken clips shipped with the package (`answer_like_a_model`: tool calls where tools are
bound), and prints the two ``export`` lines that point `ChatOpenRouterAudio()` at it.
Paste them into the shell that runs your code. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import math
import secrets
import signal
import sys
import threading
from types import FrameType

from ._answers import answer_like_a_model
from ._server import READ_TIMEOUT_S, OpenRouterTestServer

# Requests are recorded by the server; a long-running one keeps only the latest few.
_KEEP_REQUESTS = 20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m langchain_openrouter_audio.testing",
        description="Serve OpenRouter's chat-completions API on 127.0.0.1 with spoken clips, "
        "for running code offline.",
    )
    parser.add_argument(
        "command", nargs="?", choices=["serve"], default="serve", help="serve (the default)"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key clients must send (default: a new random one each run)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=READ_TIMEOUT_S,
        metavar="S",
        help="close a connection whose client is silent this long while sending a request, "
        f"or between requests (default: {READ_TIMEOUT_S:g})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"--port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if not (math.isfinite(args.read_timeout) and args.read_timeout > 0):
        print(f"--read-timeout must be a positive number, got {args.read_timeout}", file=sys.stderr)
        return 2
    api_key = args.api_key or f"offline-{secrets.token_urlsafe(12)}"
    server = OpenRouterTestServer(api_key=api_key, port=args.port, read_timeout_s=args.read_timeout)
    server.responder = answer_like_a_model
    try:
        server.start()
    except OSError as err:
        print(f"cannot listen on 127.0.0.1:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"# Local OpenRouter server on {server.base_url}, answering with shipped spoken clips.")
    print("# In the shell that runs your code:")
    print(f"export OPENROUTER_API_KEY={api_key}")
    print(f"export OPENROUTER_BASE_URL={server.base_url}")
    print("# Ctrl-C stops the server.", flush=True)
    try:
        while not stop.wait(1.0):
            del server.requests[:-_KEEP_REQUESTS]
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
