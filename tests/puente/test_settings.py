"""Settings: defaults, file, environment, and clear errors naming the bad value."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from puente.app import load_settings, run_service
from puente.settings import NodeSettings, SettingsError, load, read_config_file


@dataclass(frozen=True)
class _Example:
    host: str = "127.0.0.1"
    port: int = 5038
    timeout_s: float = 10.0
    enabled: bool = True
    packs: tuple[str, ...] = ()
    optional_limit: int | None = None
    secret: str = field(default="", repr=False)

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")


def test_defaults_file_then_environment_win_in_that_order() -> None:
    s = load(
        _Example,
        "ami",
        environ={"PUENTE_AMI_PORT": "6000", "PUENTE_AMI_PACKS": "us_federal, us_ma"},
        file_values={"port": 5555, "host": "pbx1", "enabled": "off"},
    )
    assert s.host == "pbx1"
    assert s.port == 6000
    assert s.enabled is False
    assert s.packs == ("us_federal", "us_ma")
    assert s.optional_limit is None


def test_extra_env_names_and_optional_values() -> None:
    s = load(
        _Example,
        "db",
        environ={"PUENTE_DATABASE_URL": "postgresql://x", "PUENTE_DB_OPTIONAL_LIMIT": "7"},
        extra_env={"host": "PUENTE_DATABASE_URL"},
    )
    assert s.host == "postgresql://x"
    assert s.optional_limit == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUENTE_AMI_PORT": "fifty"}, "PUENTE_AMI_PORT: bad value 'fifty'"),
        ({"PUENTE_AMI_TIMEOUT_S": "nan"}, "PUENTE_AMI_TIMEOUT_S"),
        ({"PUENTE_AMI_ENABLED": "maybe"}, "PUENTE_AMI_ENABLED: bad value 'maybe'"),
        ({"PUENTE_AMI_PORT": "70000"}, "port 70000 is out of range"),
    ],
)
def test_bad_values_name_the_variable_and_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(_Example, "ami", environ=env)


def test_secret_values_are_never_echoed() -> None:
    @dataclass(frozen=True)
    class _Secretive:
        secret: int = field(default=0, repr=False)

    with pytest.raises(SettingsError) as info:
        load(_Secretive, "ami", environ={"PUENTE_AMI_SECRET": "hunter2"})
    assert "hunter2" not in str(info.value)
    assert "<hidden>" in str(info.value)
    assert "hunter2" not in repr(load(_Example, "ami", environ={"PUENTE_AMI_SECRET": "hunter2"}))


def test_unknown_key_in_file_is_refused() -> None:
    with pytest.raises(SettingsError, match="has no setting 'prot'"):
        load(_Example, "ami", environ={}, file_values={"prot": 1})


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "puente.yaml"
    bad.write_text("ami: [1, 2\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        read_config_file(bad)
    bad.write_text("ami: 3\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        read_config_file(bad)
    with pytest.raises(SettingsError, match="No such file"):
        read_config_file(tmp_path / "missing.yaml")
    good = tmp_path / "ok.yaml"
    good.write_text("ami:\n  host: pbx2\n")
    assert read_config_file(good) == {"ami": {"host": "pbx2"}}


def test_node_settings_validation() -> None:
    with pytest.raises(SettingsError, match="log_level"):
        load(NodeSettings, "node", environ={"PUENTE_NODE_LOG_LEVEL": "loud"})
    assert load(NodeSettings, "node", environ={"PUENTE_NODE_NAME": "n1"}).name == "n1"


def test_an_empty_file_value_is_refused_not_the_text_none(tmp_path: Path) -> None:
    for key in ("host", "port", "timeout_s", "enabled"):
        with pytest.raises(SettingsError, match=rf"_example\.{key}: no value given"):
            load(_Example, "_example", environ={}, file_values={key: None})
    # An Optional setting may be left empty.
    assert load(_Example, "_example", environ={}, file_values={"optional_limit": None}) == (
        _Example()
    )
    config = tmp_path / "puente.yaml"
    config.write_text("ami:\n  enabled: false\nweb:\n  host:\n")
    with pytest.raises(SettingsError, match=r"web\.host: no value given"):
        load_settings(config, demo=False)


def test_shutdown_grace_must_be_finite() -> None:
    for bad in ("inf", "-1", "1e9"):
        with pytest.raises(SettingsError, match=r"(?i)shutdown_grace_s"):
            load(NodeSettings, "node", environ={"PUENTE_NODE_SHUTDOWN_GRACE_S": bad})


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PUENTE_AMI_PORT": "0"}, "port"),
        ({"PUENTE_AGI_PORT": "forty"}, "PUENTE_AGI_PORT"),
        ({"PUENTE_WEB_SESSION_TTL_S": "5"}, "session_ttl_s"),
        ({"PUENTE_DIALER_TICK_S": "0"}, "tick_s"),
        ({"PUENTE_DATABASE_MAX_CONNECTIONS": "0"}, "max_connections"),
    ],
)
def test_every_section_is_checked_before_the_database_is_touched(
    env: dict[str, str], name: str, monkeypatch
) -> None:
    monkeypatch.setenv("PUENTE_AMI_ENABLED", "false")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=name):
        load_settings(None, demo=True)
    # run_service too: the unreachable database is never asked (that would be a DbError).
    monkeypatch.setenv("PUENTE_DATABASE_URL", "postgresql://nobody:x@127.0.0.1:1/none")
    with pytest.raises(SettingsError, match=name):
        asyncio.run(run_service(config_path=None, demo=False, duration_s=1))


def test_unknown_config_sections_are_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "puente.yaml"
    config.write_text("webb:\n  port: 1\n")
    with pytest.raises(SettingsError, match="unknown sections"):
        load_settings(config, demo=False)


def test_a_config_file_that_is_not_utf8_is_named_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "puente.yaml"
    config.write_bytes(b"web:\n  host: caf\xe9\n")
    with pytest.raises(SettingsError, match=r"puente\.yaml: not UTF-8 text \(byte 0xe9"):
        read_config_file(config)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A second section of the same name would silently replace the first (its host and
        # secret gone); a key given twice, the same.
        ("ami:\n  host: pbx1\nweb:\n  port: 8081\nami:\n  port: 5039\n", "duplicate key 'ami'"),
        ("web:\n  port: 8080\n  port: 9090\n", r"web\.port: duplicate key 'port' \(line 3\)"),
        # YAML 1.1 would read these as a boolean and a base-60 integer (90).
        ("web:\n  secure_cookies: yes\n", r"web\.secure_cookies: YAML 1\.1 boolean 'yes'"),
        ("node:\n  shutdown_grace_s: 1:30\n", "base-60"),
    ],
)
def test_config_file_mistakes_yaml_would_hide_are_named(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "puente.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        read_config_file(config)


def test_an_empty_or_comment_only_config_file_is_no_settings(tmp_path: Path) -> None:
    config = tmp_path / "puente.yaml"
    for text in ("", "\n", "# nothing yet\n"):
        config.write_text(text)
        assert read_config_file(config) == {}


def test_a_number_that_is_not_one_is_named_in_words() -> None:
    with pytest.raises(SettingsError) as info:
        load(_Example, "ami", environ={"PUENTE_AMI_PORT": "eighty"})
    assert str(info.value) == "PUENTE_AMI_PORT: bad value 'eighty': expected an integer"
    with pytest.raises(SettingsError) as info:
        load(_Example, "ami", environ={}, file_values={"timeout_s": "soon"})
    assert str(info.value) == "config file: ami.timeout_s: bad value 'soon': expected a number"
