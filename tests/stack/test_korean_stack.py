"""A Korean help center on the shared stack: the retriever gives it the multilingual model, a
Korean customer gets Korean answers and replies over gRPC, and the CLI's table lines up."""

from __future__ import annotations

import pytest

from supportbot.v1 import chat_pb2
from tests.conftest import client_as, run_cli

pytestmark = pytest.mark.stack


async def test_korean_questions_over_grpc(stack, korean_ingested) -> None:  # type: ignore[no-untyped-def]
    assert korean_ingested.failed == 0
    async with client_as(stack, "customer") as customer, client_as(stack, "admin") as admin:
        stats = {c.name: c for c in (await admin.stats()).collections}
        assert stats["helpcenter-ko"].embedding_model == "use-multilingual-v3"
        assert stats["helpcenter-ko"].documents == 20
        _, answer, sources = await customer.ask("비밀번호를 잊어버렸어요", collection="helpcenter-ko",
                                                answer_mode=chat_pb2.ANSWER_MODE_EXTRACTIVE)
        assert answer.grounded and "비밀번호를 잊으셨나요?" in answer.answer
        assert "account/reset-password" in {c.document_id for c in answer.citations}
        assert all(s.metadata.get("category") for s in sources)
        _, unknown, _ = await customer.ask("학생 할인 있나요?", collection="helpcenter-ko",
                                           answer_mode=chat_pb2.ANSWER_MODE_EXTRACTIVE)
        assert not unknown.grounded and unknown.answer.startswith("죄송합니다.")


def test_the_cli_table_lines_up_with_korean_text(stack, korean_ingested) -> None:  # type: ignore[no-untyped-def]
    from rich.cells import cell_len

    result = run_cli(stack, "search", "-c", "helpcenter-ko", "비밀번호를 잊어버렸어요", "-k", "3")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("┏", "┃", "┡", "│", "└"))]
    assert any("비밀번호" in line for line in lines)
    # Hangul takes two terminal cells: the borders still meet when every row is as wide as the top.
    assert len({cell_len(line) for line in lines}) == 1, {cell_len(line) for line in lines}
