"""Entry point: `supportbot-generator` or `python -m services.generator`. vLLM starts its engine
in a child process, so the engine is only ever built from here."""

import os

from services.generator.settings import GeneratorSettings
from supportbot.core.server import run_service


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from services.generator.server import build_service

    run_service("generator", GeneratorSettings(), build_service)


if __name__ == "__main__":
    main()
