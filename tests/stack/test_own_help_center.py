"""The README's path for one's own help center, run as written against a fresh `supportbot up`:
ingest a folder and sync a website into a new collection, ask it from the CLI, the widget and
the OpenAI-compatible endpoint, create and revoke keys while the services run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from supportbot_cli.stack import Ports
from tests.paths import REPO
from tests.stack.test_stack_cleanup import free_port_range
from tests.websites import Resource, Site, article

BLOCK = re.compile(r"<!-- own-help-center:begin -->\s*```bash\n(.*?)```\s*<!-- own-help-center:end -->", re.DOTALL)


def readme_commands() -> str:
    match = BLOCK.search((REPO / "README.md").read_text())
    assert match, "README.md has no own-help-center block"
    return match.group(1)


def test_the_readme_block_is_there_and_names_what_the_test_replaces() -> None:
    commands = readme_commands()
    for needed in ("supportbot ingest ./our-docs -c acme", "https://help.example.com/sitemap.xml", "http://127.0.0.1:8080",
                   "keys create", "keys revoke", "/v1/chat/completions"):
        assert needed in commands


def _start_up(ports: Ports, data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    up = subprocess.Popen(
        [sys.executable, "-m", "supportbot_cli", "up", "--ports-from", str(ports.gateway), "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in up.stdout:  # type: ignore[union-attr]
            output.append(line)
            if "Try:" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(900)
    assert up.poll() is None and any("supportbot is up" in line for line in output), "".join(output)
    return up, output


@pytest.mark.stack
def test_the_readme_path_for_ones_own_help_center(tmp_path: Path) -> None:
    from supportbot.core.settings import default_data_dir
    from supportbot.models import default_model_dir, is_prepared, prepare_default_model

    model_dir = default_model_dir(default_data_dir())
    if not is_prepared(model_dir):
        prepare_default_model(default_data_dir())
    ports = Ports.starting_at(free_port_range())
    data_dir = tmp_path / "data"
    web = f"http://127.0.0.1:{ports.web}"
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "SUPPORTBOT_DATA_DIR": str(data_dir),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SUPPORTBOT_GENERATOR_MODEL": str(model_dir), "SUPPORTBOT_GATEWAY_MAX_ANSWER_TOKENS": "48",
        **{f"SUPPORTBOT_{name.upper()}_ADDRESS": f"127.0.0.1:{getattr(ports, name)}" for name in ("gateway", "retriever", "generator")},
    }
    env.pop("SUPPORTBOT_API_KEY", None)
    env.pop("SUPPORTBOT_API_KEYS_FILE", None)
    site = Site()
    site.page("/articles/reset-password.html", article("Reset your password", "Choose Forgot password on the sign-in page; "
                                                        "the link we email you works for 30 minutes.", ["/articles/refunds.html"]))
    site.page("/articles/refunds.html", article("Refunds", "Refunds reach your card within 5 business days."))
    # What a real site also has: a page that fails, a redirect loop, a file that is not a page,
    # and a page that never ends.
    site.page("/articles/broken.html", b"")
    site.resources["/articles/broken.html"].status = 500
    site.redirect("/articles/loop.html", "/articles/loop-b.html")
    site.redirect("/articles/loop-b.html", "/articles/loop.html")
    site.resources["/articles/manual.zip"] = Resource(b"PK\x03\x04", headers={"content-type": "application/zip"})
    site.resources["/articles/huge.html"] = Resource(endless=True)
    site.sitemap(["/articles/reset-password.html", "/articles/refunds.html", "/articles/broken.html", "/articles/loop.html",
                  "/articles/manual.zip", "/articles/huge.html"])
    work = tmp_path / "work"
    (work / "our-docs").mkdir(parents=True)
    (work / "our-docs" / "delivery-times.md").write_text(
        "# Delivery times\n\nOrders ship within 2 business days; delivery takes 3 to 5 more days.\n")
    # The only changes to the README's commands: where this stack and the website are.
    script = readme_commands().replace("https://help.example.com/sitemap.xml", f"{site.base}/sitemap.xml --allow-private")
    script = script.replace("http://127.0.0.1:8080", web)
    up, _ = _start_up(ports, data_dir, env)
    try:
        ran = subprocess.run(["bash", "-c", f"set -euo pipefail\n{script}\necho \"APP_KEY=$APP_KEY\""], cwd=work, env=env,
                             capture_output=True, text=True, timeout=900)
        out = ran.stdout + ran.stderr
        assert ran.returncode == 0, out
        assert "may ask acme" in out  # the ingest granted the local keys, and said so
        assert re.search(r"sitemap\.xml \(sitemap\) -> acme: 6 pages; 2 added, 0 updated, 0 unchanged, 4 failed", out), out
        assert re.search(r"-> acme: 6 pages; 0 added, 0 updated, 2 unchanged, 4 failed", out), out  # the second sync
        for failure in ("broken.html: HTTP 500", "loop.html: redirect loop", "manual.zip: not a document (application/zip)",
                        "huge.html: page over the limit of 10485760 bytes: refused while it came in"):
            assert failure in out, failure
        assert site.streamed < 100 * 1024 * 1024
        assert "PERMISSION_DENIED" not in out
        completion, _ = json.JSONDecoder().raw_decode(out[out.index('{"id"'):])
        assert completion["object"] == "chat.completion" and completion["choices"][0]["message"]["content"]
        assert "acme widget" in out and "acme app" in out
        app_key = re.search(r"APP_KEY=(\S+)", out).group(1)  # type: ignore[union-attr]
        # Revoked at the end of the block, while the services run: refused within a couple of seconds.
        deadline, status = time.monotonic() + 10, 0
        while time.monotonic() < deadline:
            status = httpx.post(f"{web}/v1/chat/completions", headers={"authorization": f"Bearer {app_key}"}, json={
                "model": "supportbot", "collection": "acme", "messages": [{"role": "user", "content": "hello"}]}, timeout=60).status_code
            if status == 401:
                break
            time.sleep(0.5)
        assert status == 401
        # The widget on this machine may ask acme: its page, and the call it makes, from its origin.
        demo = httpx.get(f"{web}/widget-demo?collection=acme", timeout=30)
        widget_key = re.search(r'data-key="(sb_publishable_[^"]+)"', demo.text)
        assert demo.status_code == 200 and widget_key, demo.text[:500]
        chat = httpx.post(f"{web}/v1/chat", headers={"x-api-key": widget_key.group(1), "origin": web},
                          json={"message": "When do refunds arrive?", "collection": "acme", "channel": "widget"}, timeout=120)
        assert chat.status_code == 200 and "event: result" in chat.text, chat.text[:500]
        host = site.base.removeprefix("http://").replace(":", "-")
        for question, document in (("How long does delivery take?", "delivery-times"),  # from the folder
                                   ("When do refunds reach my card?", f"{host}/articles/refunds.html")):  # from the site
            found = subprocess.run([sys.executable, "-m", "supportbot_cli", "search", "-c", "acme", "--json", question],
                                   env=env, capture_output=True, text=True, timeout=120)
            ids = [r["document_id"] for r in json.loads(found.stdout)["results"]]
            assert ids and ids[0] == document, ids
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(120)
        site.close()
