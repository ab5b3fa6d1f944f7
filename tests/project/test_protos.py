"""The committed generated code matches the protos, and the protos pass buf lint."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


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


def test_vendored_http_annotations_match_the_python_package() -> None:
    """buf lints with proto/google/api; the generated code imports googleapis-common-protos'
    copy at run time: both must be the same files."""
    from google.api import annotations_pb2

    package = Path(annotations_pb2.__file__).parent
    for name in ("annotations.proto", "http.proto"):
        assert (REPO / "proto" / "google" / "api" / name).read_bytes() == (package / name).read_bytes(), name


def test_every_chat_method_has_an_http_route() -> None:
    from google.api import annotations_pb2

    from supportbot.v1 import chat_pb2

    for method in chat_pb2.DESCRIPTOR.services_by_name["ChatService"].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        assert rule.WhichOneof("pattern") in {"get", "post"}, method.name
