"""Keys you can manage: hashed secrets, scopes, rotation's grace period, revocation, and a keys
file that services follow without a restart (keeping the last good keys when it breaks)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from supportbot.core import auth
from supportbot.core.auth import (
    KeyRing,
    KeysFile,
    create_local_keys,
    hash_key,
    local_key,
    read_credentials,
)
from supportbot_cli import app


@pytest.fixture()
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "api-keys.json"


def _touch_later(path: Path) -> None:
    """A write the ring must notice even within one mtime tick."""
    later = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))


def test_secrets_are_stored_hashed_and_publishable_keys_in_the_clear(keys_path: Path) -> None:
    keys = KeysFile.load(keys_path)
    customer, secret = keys.create("customer", name="acme app", collections=["acme"])
    widget, public = keys.create("publishable", name="acme site", collections=["acme"], origins=["https://help.acme.example/"])
    keys.save()
    text = keys_path.read_text()
    assert secret not in text and hash_key(secret) in text and public in text
    ring = KeyRing.load(keys_path)
    principal = ring.lookup(secret)
    assert principal is not None and principal.key_id == customer.id and principal.collections == ("acme",)
    assert principal.customer_id == f"customer:{customer.id}"  # its sessions are its own
    assert principal.may_use_collection("acme", "helpcenter") and not principal.may_use_collection("helpcenter", "helpcenter")
    assert ring.lookup(public).origins == ("https://help.acme.example",)
    assert ring.publishable_key("https://help.acme.example") == public
    assert ring.lookup(secret + "x") is None and ring.lookup("") is None
    assert oct(keys_path.stat().st_mode & 0o777) == "0o600"


def test_rotation_keeps_the_old_key_for_its_grace_period_and_revocation_ends_it_at_once(keys_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    keys = KeysFile.load(keys_path)
    old, old_secret = keys.create("agent", name="desk", collections=["acme"])
    keys.save()
    keys = KeysFile.load(keys_path)
    new, new_secret = keys.rotate(keys.find(old.id)[0], dt.timedelta(hours=1))
    keys.save()
    ring = KeyRing.load(keys_path)
    assert ring.lookup(old_secret).name == ring.lookup(new_secret).name == "desk"
    assert ring.lookup(new_secret).collections == ("acme",)
    later = auth.utc_now() + dt.timedelta(hours=1, seconds=1)
    monkeypatch.setattr(auth, "utc_now", lambda: later)
    assert ring.lookup(old_secret) is None and ring.lookup(new_secret) is not None  # the grace period is over
    keys = KeysFile.load(keys_path)
    keys.revoke(keys.find(new.id)[0])
    keys.save()
    ring.refresh(force=True)
    assert ring.lookup(new_secret) is None


def test_a_service_follows_the_file_and_keeps_the_last_good_keys_when_it_breaks(keys_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    keys = KeysFile.load(keys_path)
    _, first = keys.create("customer", name="first")
    keys.save()
    ring = KeyRing.load(keys_path)
    keys = KeysFile.load(keys_path)
    _, second = keys.create("customer", name="second")
    keys.save()
    _touch_later(keys_path)
    ring.refresh(force=True)
    assert ring.lookup(second) is not None
    keys_path.write_text(keys_path.read_text()[:-20])  # a hand edit gone wrong
    _touch_later(keys_path)
    with caplog.at_level("ERROR"):
        ring.refresh(force=True)
    assert ring.lookup(first) is not None and ring.lookup(second) is not None
    assert "not valid JSON" in ring.last_error and any("last good keys" in r.message for r in caplog.records)
    keys_path.write_text(json.dumps({"keys": [{"key": "sb_hand_written", "role": "customer", "name": "clear"}]}))
    _touch_later(keys_path)
    ring.refresh(force=True)
    assert ring.lookup("sb_hand_written").name == "clear" and ring.lookup(first) is None and not ring.last_error


def test_a_clear_keys_file_loads_and_is_hashed_on_the_next_write_without_losing_the_local_clients_keys(keys_path: Path) -> None:
    from tests.conftest import TEST_KEYS, write_test_keys

    write_test_keys(keys_path)
    assert local_key(keys_path, "admin") == TEST_KEYS["admin"]["key"]
    keys = KeysFile.load(keys_path)
    keys.create("customer", name="new")
    keys.save()
    text = keys_path.read_text()
    assert TEST_KEYS["admin"]["key"] not in text and TEST_KEYS["publishable"]["key"] in text
    assert local_key(keys_path, "admin") == TEST_KEYS["admin"]["key"]  # from the credentials file now
    ring = KeyRing.load(keys_path)
    assert all(ring.lookup(entry["key"]) is not None for entry in TEST_KEYS.values())


def test_the_local_widget_key_follows_the_stacks_web_port(keys_path: Path) -> None:
    create_local_keys(keys_path)
    create_local_keys(keys_path, ["http://127.0.0.1:41008"])
    ring = KeyRing.load(keys_path)
    assert ring.publishable_key("http://127.0.0.1:41008") == local_key(keys_path, "publishable")
    assert set(read_credentials(keys_path)) == {"customer", "publishable", "agent", "service", "admin"}


def test_the_keys_commands(keys_path: Path) -> None:
    runner = CliRunner()
    env = {"SUPPORTBOT_API_KEYS_FILE": str(keys_path), "COLUMNS": "250"}
    created = runner.invoke(app, ["keys", "create", "--role", "customer", "--collections", "acme,beta", "--name", "acme app", "-q"], env=env)
    assert created.exit_code == 0, created.output
    secret = created.output.strip()
    assert secret.startswith("sb_customer_")
    assert KeyRing.load(keys_path).lookup(secret).collections == ("acme", "beta")
    bad = runner.invoke(app, ["keys", "create", "--role", "publishable", "--name", "site"], env=env)
    assert bad.exit_code == 2 and "origins" in bad.output
    listed = runner.invoke(app, ["keys", "list", "--json"], env=env)
    [entry] = json.loads(listed.output)
    # The lookup above was a use (a service writes it beside the keys file).
    assert entry["name"] == "acme app" and entry["last_used"] and secret not in listed.output
    assert runner.invoke(app, ["keys", "grant", "acme app", "gamma"], env=env).exit_code == 0
    assert KeyRing.load(keys_path).lookup(secret).collections == ("acme", "beta", "gamma")
    rotated = runner.invoke(app, ["keys", "rotate", entry["id"], "--grace", "0", "-q"], env=env)
    assert rotated.exit_code == 0, rotated.output
    ring = KeyRing.load(keys_path)
    assert ring.lookup(secret) is None and ring.lookup(rotated.output.strip()).collections == ("acme", "beta", "gamma")
    revoked = runner.invoke(app, ["keys", "revoke", "acme app"], env=env)
    assert revoked.exit_code == 2 and "2 keys are named" in revoked.output  # the old and the new: name one by id
    new_id = json.loads(runner.invoke(app, ["keys", "list", "--json"], env=env).output)[0]["id"]
    assert runner.invoke(app, ["keys", "revoke", new_id], env=env).exit_code == 0
    assert KeyRing.load(keys_path).lookup(rotated.output.strip()) is None
    shown = runner.invoke(app, ["keys", "list", "--all"], env=env).output
    assert "revoked" in shown and "expired" in shown


def test_ingest_of_a_new_collection_grants_it_to_the_local_customer_and_widget_keys_only(keys_path: Path) -> None:
    from supportbot.keys_cli import grant_local_keys

    create_local_keys(keys_path)
    keys = KeysFile.load(keys_path)
    _, other = keys.create("customer", name="someone else's app", collections=["beta"])
    keys.save()
    assert grant_local_keys("acme", keys_path) == ["local customer", "local widget"]
    ring = KeyRing.load(keys_path)
    assert "acme" in ring.lookup(local_key(keys_path, "customer")).collections
    assert "acme" in ring.lookup(local_key(keys_path, "publishable")).collections
    assert ring.lookup(other).collections == ("beta",)
    hand_written = keys_path.with_name("deployment-keys.json")
    hand_written.write_text(json.dumps({"keys": [{"key": "sb_x_customer", "role": "customer", "name": "web"}]}))
    assert grant_local_keys("acme", hand_written) == []  # not a local stack: nothing granted
