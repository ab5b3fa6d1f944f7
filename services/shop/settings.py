from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.core.settings import default_data_dir


class ShopSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_SHOP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    # The SQLite file; ":memory:" keeps everything in the process (tests, benchmarks).
    database: str = Field(default_factory=lambda: str(default_data_dir() / "shop" / "shop.sqlite3"))
    # Seed the demo customers when the database is empty.
    seed: bool = True
    # What supportbot presents (Authorization: Bearer ...), as a company's API would require of a
    # trusted backend; the customer it acts for comes in the customer header.
    service_token: SecretStr = SecretStr("")
    customer_header: str = "X-Customer-Id"
    # Orders may be returned this many days after delivery (help center: returns/return-policy).
    return_window_days: int = Field(default=30, ge=0)
    grace_period_s: float = Field(default=5.0, ge=0)

    def database_path(self) -> str:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        return self.database
