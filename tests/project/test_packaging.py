"""What the installed commands import works from anywhere, not only from the repository root
(pytest puts the root on sys.path; `supportbot up` run elsewhere does not)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_stack_environment_builds_outside_the_repository(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "from pathlib import Path; from supportbot_cli.stack import Stack, Ports; "
        "env = Stack(Path('.'), ports=Ports()).environment(); "
        "print(env['SUPPORTBOT_GATEWAY_REDIS_URL'], env['SUPPORTBOT_UI_AGENT_API_KEY'] == '')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["redis://127.0.0.1:6380/0", "True"]
