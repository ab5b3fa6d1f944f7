"""Entry point: `supportbot-http` or `python -m services.web`."""

import signal
import sys

from services.web.settings import WebSettings
from supportbot.core.logging import configure_logging


def main() -> None:
    import uvicorn

    from services.web.app import build_app

    settings = WebSettings()
    configure_logging("web", settings.log_level, settings.log_json)
    # uvicorn drains on SIGTERM, then raises the signal again under the handler it found: exit 0
    # then, as the gRPC services do after their graceful stop.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    uvicorn.run(
        build_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.grace_period_s), proxy_headers=True,
    )


if __name__ == "__main__":
    main()
