from __future__ import annotations

import pytest

from engine.errors import Fatal
from engine.settings import DEV_JWT_SECRET, load_settings


def test_defaults_are_the_embedded_run() -> None:
    s = load_settings({})
    assert (s.host, s.port, s.ingress, str(s.data_dir)) == ("127.0.0.1", 8000, "direct", "var")
    assert s.db_path.name == "tandem.duckdb"


def test_settings_are_frozen() -> None:
    s = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        s.port = 1  # type: ignore[misc]


def test_a_bad_value_names_the_variable_and_why_in_one_line() -> None:
    with pytest.raises(Fatal) as info:
        load_settings({"TANDEM_PORT": "eighty"})
    message = info.value.message
    assert message.startswith("TANDEM_PORT:")
    assert "integer" in message
    assert "\n" not in message


def test_out_of_range_and_unknown_choices_are_refused() -> None:
    with pytest.raises(Fatal, match="TANDEM_PORT"):
        load_settings({"TANDEM_PORT": "70000"})
    with pytest.raises(Fatal, match="TANDEM_INGRESS"):
        load_settings({"TANDEM_INGRESS": "carrier-pigeon"})


def test_production_refuses_default_or_empty_secrets() -> None:
    with pytest.raises(Fatal, match="TANDEM_WEBHOOK_SECRET: default or empty"):
        load_settings({"TANDEM_ENV": "production"})
    with pytest.raises(Fatal, match="TANDEM_JWT_SECRET"):
        load_settings(
            {
                "TANDEM_ENV": "production",
                "TANDEM_WEBHOOK_SECRET": "a-long-enough-webhook-secret",
                "TANDEM_JWT_SECRET": "",
            }
        )
    ok = load_settings(
        {
            "TANDEM_ENV": "production",
            "TANDEM_WEBHOOK_SECRET": "a-long-enough-webhook-secret",
            "TANDEM_JWT_SECRET": "another-long-enough-jwt-secret",
        }
    )
    assert ok.env == "production"


def test_secrets_never_show_in_repr_public_view_or_errors() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    s = load_settings({"TANDEM_WEBHOOK_SECRET": secret})
    assert secret not in repr(s)
    assert secret not in str(s.public())
    assert DEV_JWT_SECRET not in str(s.public())
    assert s.webhook_secret.get_secret_value() == secret
    with pytest.raises(Fatal) as info:
        load_settings({"TANDEM_JWT_SECRET": ["not", "a", "string"]})  # type: ignore[dict-item]
    assert "(got **********)" in info.value.message
    assert "'a'" not in info.value.message


def test_every_setting_is_documented_in_env_example() -> None:
    from pathlib import Path

    from engine.settings import ENV_PREFIX, Settings

    example = Path(__file__).resolve().parents[2] / ".env.example"
    documented = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line.startswith(ENV_PREFIX)
    }
    expected = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert documented == expected
