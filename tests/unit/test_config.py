"""Settings: file, then environment over it, then explicit overrides; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import load_settings
from stream.errors import ConfigError


def test_defaults_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEWATCH_CONFIG", raising=False)
    monkeypatch.delenv("TIDEWATCH_KAFKA__BOOTSTRAP", raising=False)
    settings = load_settings()
    assert settings.topics.predictions == "predictions"
    assert settings.store.kind == "embedded"


def test_env_wins_over_file_and_overrides_win_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tidewatch.yaml"
    path.write_text("kafka:\n  bootstrap: file:1\n  sasl_password: hunter2\n"
                    "windows:\n  size_s: 600\nmetrics:\n  segments: [country]\n")
    monkeypatch.setenv("TIDEWATCH_KAFKA__BOOTSTRAP", "env:2")
    monkeypatch.setenv("TIDEWATCH_METRICS__SEGMENTS", "[country, device]")
    settings = load_settings(path, windows={"size_s": 120})
    assert settings.kafka.bootstrap == "env:2"
    assert settings.metrics.segments == ("country", "device")
    assert settings.windows.size_s == 120
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("topics:\n  partitions: 8\n")
    monkeypatch.setenv("TIDEWATCH_CONFIG", str(path))
    assert load_settings().topics.partitions == 8


def test_the_broker_jar_cache_variable_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/kafka reads TIDEWATCH_KAFKA_CACHE; a worker started under it must still load."""
    monkeypatch.setenv("TIDEWATCH_KAFKA_CACHE", "/somewhere")
    assert load_settings().kafka.bootstrap


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kafka: [1, 2", "not valid YAML"),
        ("- a\n- b\n", "mapping at the top level"),
        ("windows:\n  size_s: 5\n", "invalid settings"),
        ("store:\n  kind: server\n", "store.url is not set"),
        ("unknown_section: 1\n", "invalid settings"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "absent.yaml")


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.windows.size_s = 5  # type: ignore[misc]
