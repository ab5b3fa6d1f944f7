"""The shop served over real HTTP inside this process, on a free port, in a thread: for the
benchmark, the tests, and (next session) `supportbot up`. `python -m services.shop` is the
stand-alone process."""

from __future__ import annotations

import threading
import time
from typing import Any

from services.shop.app import build_app
from services.shop.settings import ShopSettings
from services.shop.store import ShopStore


class ShopServer:
    def __init__(self, settings: ShopSettings, store: ShopStore | None = None, *, wrap: Any = None) -> None:
        """`wrap`, if given, wraps the ASGI app (tests put a faulty network in front of it)."""
        import uvicorn

        self.settings = settings
        self.app = build_app(settings, store)
        self.store: ShopStore = self.app.state.store
        app = wrap(self.app) if wrap else self.app
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="shop", daemon=True)

    @property
    def url(self) -> str:
        sockets = [s for server in self._server.servers for s in server.sockets]
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout_s: float = 20.0) -> ShopServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the shop did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
