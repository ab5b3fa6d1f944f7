"""Entry point: `supportbot-http` or `python -m services.web`."""

from services.web.settings import WebSettings
from supportbot.core.logging import configure_logging


def main() -> None:
    import uvicorn

    from services.web.app import build_app

    settings = WebSettings()
    configure_logging("web", settings.log_level, settings.log_json)
    uvicorn.run(
        build_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=int(settings.grace_period_s), proxy_headers=True,
    )


if __name__ == "__main__":
    main()
