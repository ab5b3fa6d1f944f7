"""Where the tests find the repository and their data, wherever a test module sits in tests/."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
ARTIFACTS = REPO / "test-artifacts"
