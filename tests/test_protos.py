"""The committed generated code matches the protos, and the protos pass buf lint."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "generate_protos.py"), str(tmp_path)], check=True)
    fresh = tmp_path / "supportbot" / "v1"
    committed = REPO / "supportbot" / "v1"
    fresh_names = sorted(p.name for p in fresh.iterdir() if p.suffix in {".py", ".pyi"})
    committed_names = sorted(p.name for p in committed.iterdir() if p.suffix in {".py", ".pyi"})
    assert fresh_names == committed_names
    stale = [name for name in fresh_names if not filecmp.cmp(fresh / name, committed / name, shallow=False)]
    assert not stale, f"regenerate with `python scripts/generate_protos.py`: stale {stale}"


def test_buf_lint_passes() -> None:
    buf = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    assert buf.exists(), "buf is missing: `make install` puts it under .tools/"
    result = subprocess.run([str(buf), "lint"], cwd=REPO / "proto", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_enum_starts_with_unspecified() -> None:
    from supportbot.v1 import chat_pb2, common_pb2, retriever_pb2

    for module in (chat_pb2, common_pb2, retriever_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED"), enum.name
