"""Entry point: `supportbot-shop` or `python -m services.shop`."""

import signal
import sys

from services.shop.settings import ShopSettings
from supportbot.core.logging import configure_logging


def main() -> None:
    import uvicorn

    from services.shop.app import build_app

    settings = ShopSettings()
    configure_logging("shop", settings.log_level, settings.log_json)
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    uvicorn.run(
        build_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.grace_period_s),
    )


if __name__ == "__main__":
    main()
