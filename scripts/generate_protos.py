"""Regenerates the Python gRPC code in supportbot/v1 from proto/supportbot/v1/*.proto.

Usage: python scripts/generate_protos.py [OUTPUT_ROOT]   (default: the repository root)
The test suite runs this into a temporary folder and fails if the committed code differs.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE_DIR = Path("supportbot") / "v1"


def generate(output_root: Path) -> list[Path]:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    out = output_root / PACKAGE_DIR
    out.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        f"--grpc_python_out={output_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    init = out / "__init__.py"
    init.write_text('"""Generated gRPC code for supportbot.v1; regenerate with scripts/generate_protos.py."""\n')
    return sorted(p for p in out.iterdir() if p.suffix in {".py", ".pyi"})


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT
    for path in generate(root):
        print(path)
