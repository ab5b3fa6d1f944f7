"""`supportbot keys`: API keys (the commands live beside the keys file they edit)."""

from __future__ import annotations

from supportbot.keys_cli import keys_app as app

GROUP = "keys"
__all__ = ["GROUP", "app"]
