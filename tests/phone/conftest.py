"""Apps under uvicorn on 127.0.0.1 for the phone tests, and the auth token they share."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")

import uvicorn

from tests._helpers import bound_socket

AUTH_TOKEN = "phone-test-auth-token-0123456789"


class Served:
    """`app` under uvicorn in a thread; `on_exit` runs in the server's loop as it stops."""

    def __init__(self, app: Any, on_exit: Callable[[], Any] | None = None) -> None:
        # uvicorn listens on a socket bound here: no other process can take the port
        # between choosing it and listening on it.
        self.socket = bound_socket()
        port = self.socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)

        async def run() -> None:
            try:
                await self.server.serve(sockets=[self.socket])
            finally:
                if on_exit is not None:
                    await on_exit()

        self.thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if not self.thread.is_alive():  # uvicorn closed it already, unless it never started
            self.socket.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start an app under uvicorn; returns its base URL. Stopped after the test."""
    served: list[Served] = []

    def start(app: Any, on_exit: Callable[[], Any] | None = None) -> str:
        served.append(Served(app, on_exit))
        return served[-1].base_url

    yield start
    for one in served:
        one.stop()
