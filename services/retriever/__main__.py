"""Entry point: `supportbot-retriever` or `python -m services.retriever`."""

import os

from services.retriever.settings import RetrieverSettings
from supportbot.core.server import run_service


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from services.retriever.server import build_service

    run_service("retriever", RetrieverSettings(), build_service)


if __name__ == "__main__":
    main()
