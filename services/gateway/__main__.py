"""Entry point: `supportbot-gateway` or `python -m services.gateway`."""

from services.gateway.settings import GatewaySettings
from supportbot.core.server import run_service


def main() -> None:
    from services.gateway.server import build_service

    run_service("gateway", GatewaySettings(), build_service)


if __name__ == "__main__":
    main()
