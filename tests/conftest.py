"""Shared fixtures. Tests that need the model or the whole stack share one started stack per
session (`stack`); retriever tests share one embedding model (`dense_embedder`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the shared stack run after everything that uses it."""
    items.sort(key=lambda item: item.get_closest_marker("stops_stack") is not None)


@pytest.fixture(scope="session")
def dense_embedder():  # type: ignore[no-untyped-def]
    from services.retriever.embedding import DenseEmbedder

    return DenseEmbedder()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Stack"]:  # noqa: F821
    from supportbot.core.settings import default_data_dir
    from supportbot.models import default_model_dir, is_prepared, prepare_default_model
    from supportbot.stack import Ports, Stack

    model_dir = default_model_dir(default_data_dir())
    if not is_prepared(model_dir):
        prepare_default_model(default_data_dir())
    data_dir = tmp_path_factory.mktemp("stack")
    started = Stack(
        data_dir,
        services=("retriever", "generator", "gateway"),
        ports=Ports.free(),
        extra_env={
            "SUPPORTBOT_GENERATOR_MODEL": str(model_dir),
            # Short answers keep the suite fast on two cores.
            "SUPPORTBOT_GATEWAY_MAX_ANSWER_TOKENS": "48",
            "SUPPORTBOT_GATEWAY_GRACE_PERIOD_S": "60",
        },
    )
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def sample_ingested(stack) -> dict[str, int]:  # type: ignore[no-untyped-def]
    import asyncio

    from supportbot.cli import _ingest
    from supportbot.sample import HELPCENTER

    return asyncio.run(_ingest([HELPCENTER], "", stack.address("retriever"), quiet=True))


@pytest.fixture()
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
