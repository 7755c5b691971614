"""Tandem's one settings object: typed, frozen, validated at start-up.

Only composition roots (the CLI, tests) call `load_settings()`; everything else receives
the `Settings` instance. A bad value stops start-up with one line naming the variable.
Every variable is documented in `.env.example`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import Fatal

ENV_PREFIX = "TANDEM_"

# Development defaults for secrets: refused when TANDEM_ENV=production.
DEV_WEBHOOK_SECRET = "dev-webhook-secret"
DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"

Ingress = Literal["direct", "proxy"]
# Freqtrade's protection method names, as `engine.protections` implements them.
PROTECTIONS = ("CooldownPeriod", "StoplossGuard", "MaxDrawdown", "LowProfitPairs")


class Settings(BaseSettings):
    """Every setting Tandem reads, prefixed `TANDEM_` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_file=None
    )

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    ingress: Ingress = "direct"
    data_dir: Path = Path("./var")
    ray_address: str | None = None
    dashboard_port: int = Field(default=8265, ge=1, le=65535)
    num_cpus: int | None = Field(default=None, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    webhook_secret: SecretStr = SecretStr(DEV_WEBHOOK_SECRET)
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    webhook_url_token: SecretStr | None = None
    webhook_hmac_secret: SecretStr | None = None
    webhook_allowlist: str = ""
    webhook_rate_per_min: float = Field(default=120.0, gt=0)
    webhook_burst: int = Field(default=60, ge=1)
    dedupe_window_s: float = Field(default=60.0, gt=0)
    alpaca_key_id: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    twelvedata_api_key: SecretStr | None = None
    broker: Literal["paper", "alpaca"] = "paper"
    alpaca_live: bool = False
    alpaca_trading_url: str | None = None
    alpaca_stream_url: str | None = None
    clock: Literal["live", "sim"] = "live"
    sim_start: datetime | None = None
    scenario: str = "spy-2013-10"
    target_dte: int = Field(default=7, ge=0, le=365)
    slippage_ticks: int = Field(default=1, ge=0, le=100)
    # Protections: TANDEM_<METHOD>_<PARAMETER>, Freqtrade's parameter names; periods in minutes.
    protections: str = "StoplossGuard,MaxDrawdown,LowProfitPairs"
    cooldownperiod_stop_duration: int = Field(default=5, ge=0)
    stoplossguard_lookback_period: int = Field(default=1440, ge=0)
    stoplossguard_trade_limit: int = Field(default=3, ge=1)
    stoplossguard_stop_duration: int = Field(default=240, ge=0)
    stoplossguard_only_per_pair: bool = False
    stoplossguard_required_profit: float = Field(default=0.0, allow_inf_nan=False)
    maxdrawdown_lookback_period: int = Field(default=2880, ge=0)
    maxdrawdown_trade_limit: int = Field(default=3, ge=1)
    maxdrawdown_stop_duration: int = Field(default=720, ge=0)
    maxdrawdown_max_allowed_drawdown: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    lowprofitpairs_lookback_period: int = Field(default=1440, ge=0)
    lowprofitpairs_trade_limit: int = Field(default=2, ge=1)
    lowprofitpairs_stop_duration: int = Field(default=60, ge=0)
    lowprofitpairs_required_profit: float = Field(default=0.0, allow_inf_nan=False)
    instrument_mode: Literal["option", "equity"] = "option"
    opposite_entry: Literal["reject", "reverse"] = "reject"
    experiment_id: str = Field(default="ab-1", min_length=1, max_length=64)
    experiment_unit: Literal["session", "signal"] = "session"
    meta_threshold: float = Field(default=60.0, ge=0, le=100)
    store_max_batch: int = Field(default=512, ge=1, le=100_000)
    export_interval_s: float = Field(default=1.0, gt=0)
    export_max_rows: int = Field(default=100_000, ge=1)
    health_timeout_s: float = Field(default=2.0, gt=0)

    @field_validator(
        "webhook_url_token",
        "webhook_hmac_secret",
        "sim_start",
        "alpaca_key_id",
        "alpaca_secret_key",
        "twelvedata_api_key",
        "alpaca_trading_url",
        "alpaca_stream_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("webhook_allowlist")
    @classmethod
    def _addresses(cls, value: str) -> str:
        import ipaddress

        for item in _split(value):
            ipaddress.ip_network(item, strict=False)  # raises ValueError naming the item
        return value

    @field_validator("protections")
    @classmethod
    def _known_protections(cls, value: str) -> str:
        unknown = [name for name in _split(value) if name not in PROTECTIONS]
        if unknown:
            raise ValueError(f"unknown protections {unknown}; known: {', '.join(PROTECTIONS)}")
        return value

    @property
    def protection_names(self) -> tuple[str, ...]:
        """The enabled protections (Freqtrade's method names); empty means none."""
        return _split(self.protections)

    @property
    def webhook_sources(self) -> tuple[str, ...]:
        """The allowlist as addresses or CIDR networks; empty means any source."""
        return _split(self.webhook_allowlist)

    @model_validator(mode="after")
    def _sim_needs_a_start(self) -> Settings:
        if self.clock == "sim" and self.sim_start is None:
            raise ValueError(f"{ENV_PREFIX}SIM_START: required when {ENV_PREFIX}CLOCK=sim")
        if self.sim_start is not None and self.sim_start.tzinfo is None:
            raise ValueError(f"{ENV_PREFIX}SIM_START: needs a time zone, e.g. Z or +00:00")
        return self

    @field_validator("alpaca_trading_url", "alpaca_stream_url")
    @classmethod
    def _alpaca_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        schemes = (
            ("https://", "http://")
            if info.field_name == "alpaca_trading_url"
            else ("wss://", "ws://")
        )
        if value is not None and not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value

    @model_validator(mode="after")
    def _alpaca_broker_is_complete(self) -> Settings:
        """Alpaca trading needs both keys and the live clock; the live endpoint needs it."""
        if self.broker != "alpaca":
            if self.alpaca_live:
                raise ValueError(f"{ENV_PREFIX}ALPACA_LIVE: needs {ENV_PREFIX}BROKER=alpaca")
            return self
        missing = [
            f"{ENV_PREFIX}{name.upper()}"
            for name in ("alpaca_key_id", "alpaca_secret_key")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"{ENV_PREFIX}BROKER=alpaca: missing {', '.join(missing)}")
        if self.clock != "live":
            raise ValueError(f"{ENV_PREFIX}BROKER=alpaca: needs {ENV_PREFIX}CLOCK=live")
        return self

    @field_validator("data_dir")
    @classmethod
    def _data_dir_not_empty(cls, value: Path) -> Path:
        if str(value).strip() == "":
            raise ValueError("must be a directory path")
        return value

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.env != "production":
            return self
        for name, default in (
            ("webhook_secret", DEV_WEBHOOK_SECRET),
            ("jwt_secret", DEV_JWT_SECRET),
        ):
            value = getattr(self, name).get_secret_value()
            if value in ("", default):
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: default or empty in production")
            if len(value) < 16:
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: shorter than 16 characters")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tandem.duckdb"

    @property
    def snapshots_dir(self) -> Path:
        """Engine 2's enrichment snapshots (Parquet, named by their SHA-256)."""
        return self.data_dir / "enrichments"

    @property
    def events_dir(self) -> Path:
        return self.data_dir / "events"

    def public(self) -> dict[str, object]:
        """The settings as a dict fit for logs and the API: secrets masked."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            out[name] = "**********" if isinstance(value, SecretStr) else value
        return out


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build `Settings` from `environ` (the process environment when None).

    Raises `Fatal` with one line per bad variable, each naming it and saying why.
    """
    try:
        if environ is None:
            return Settings()
        prefixed = {
            k[len(ENV_PREFIX) :].lower(): v for k, v in environ.items() if k.startswith(ENV_PREFIX)
        }
        return Settings.model_validate(prefixed)
    except ValidationError as exc:
        raise Fatal(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: `TANDEM_PORT: Input should be a valid integer (got 'x')`."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid"))
        if loc:
            var = ENV_PREFIX + loc[0].upper()
            got = "**********" if "SECRET" in var else repr(err.get("input"))
            lines.append(f"{var}: {message} (got {got})")
        else:
            lines.append(message.removeprefix("Value error, "))
    return "; ".join(lines)
