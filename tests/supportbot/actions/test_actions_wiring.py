"""The stage built from typed settings, as the gateway's turn will build it: nothing without an
actions file, and with one, a stage that talks to the real demo shop."""

from __future__ import annotations

import json

import pytest

from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from supportbot.actions.identity import CustomerIdentity
from supportbot.actions.routing import HashingEmbedder
from supportbot.actions.stage import ActionTurn
from supportbot.actions.wiring import ActionSettings, build_action_stage
from supportbot.sample import HELPCENTER, KOREAN_HELPCENTER

TOKEN = "wiring-test-token-" + "w" * 24


def test_without_an_actions_file_there_is_no_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPPORTBOT_ACTIONS_FILE", raising=False)
    assert build_action_stage(ActionSettings(), {"en": HashingEmbedder()}) is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SUPPORTBOT_ACTIONS_FILE", str(tmp_path / "actions.yaml"))
    monkeypatch.setenv("SUPPORTBOT_ACTIONS_HELP_CENTERS", json.dumps({"en": str(tmp_path)}))
    settings = ActionSettings()
    assert settings.file == tmp_path / "actions.yaml" and settings.help_centers == {"en": tmp_path}


def test_an_english_embedder_is_required() -> None:
    from supportbot.actions.declarations import sample_actions_path

    with pytest.raises(ValueError, match="English embedder"):
        build_action_stage(ActionSettings(file=sample_actions_path()), {"ko": HashingEmbedder()})


async def test_the_built_stage_answers_from_the_shop_and_passes_help_center_questions() -> None:
    from supportbot.actions.declarations import sample_actions_path

    with ShopServer(ShopSettings(database=":memory:", port=0, service_token=TOKEN)) as server:
        settings = ActionSettings(file=sample_actions_path(), base_url=server.url,
                                  help_centers={"en": HELPCENTER, "ko": KOREAN_HELPCENTER})
        stage = build_action_stage(settings, {"en": HashingEmbedder(), "ko": HashingEmbedder()},
                                   environ={"SUPPORTBOT_SHOP_SERVICE_TOKEN": TOKEN})
        assert stage is not None
        ana = CustomerIdentity("c-ana", "customer_key")
        lookup = await stage.run(ActionTurn("What's the status of order L-104233?", None, ana))
        assert lookup.kind == "result" and "[order L-104233]" in lookup.text
        # The help center's own sentence is in the neither class: it stays a help-center turn.
        policy = await stage.run(ActionTurn("Go to Account Profile E-mail , enter the new address and confirm with your password.", None, ana))
        assert policy.passthrough
        await stage.executor.aclose()
