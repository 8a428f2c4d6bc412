"""Every bad setting is named in one error: an operator fixing a config file meets all of its
mistakes at once, each with the setting, where it was given and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from puente.app import load_settings
from puente.settings import SettingsError, load, read_config_file
from puente.strict_yaml import StrictYamlError, check_strict, load_strict


@dataclass(frozen=True)
class _Example:
    host: str = "127.0.0.1"
    port: int = 5038
    timeout_s: float = 10.0
    enabled: bool = True
    secret: int = field(default=0, repr=False)

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")


def test_every_bad_value_of_a_section_is_named_with_its_own_message() -> None:
    with pytest.raises(SettingsError) as info:
        load(
            _Example,
            "ami",
            environ={"PUENTE_AMI_PORT": "eighty", "PUENTE_AMI_SECRET": "hunter2"},
            file_values={"timeout_s": "soon", "enabled": "maybe", "prot": 1},
        )
    assert set(info.value.problems) == {
        "config file: [ami] has no setting 'prot' (known: enabled, host, port, secret, timeout_s)",
        "config file: ami.timeout_s: bad value 'soon': expected a number",
        "config file: ami.enabled: bad value 'maybe': expected true/false",
        "PUENTE_AMI_PORT: bad value 'eighty': expected an integer",
        "PUENTE_AMI_SECRET: bad value <hidden>: expected int",
    }
    text = str(info.value)
    assert text.startswith("5 problems with the settings:\n")
    assert all(p in text for p in info.value.problems)
    assert "hunter2" not in text


def test_a_bad_file_value_is_named_even_when_the_environment_overrides_it() -> None:
    with pytest.raises(SettingsError) as info:
        load(_Example, "ami", environ={"PUENTE_AMI_PORT": "70000"}, file_values={"port": "x"})
    assert info.value.problems == (
        "config file: ami.port: bad value 'x': expected an integer",
        "ami settings: port 70000 is out of range (port: PUENTE_AMI_PORT)",
    )


def test_one_problem_reads_as_before() -> None:
    with pytest.raises(SettingsError) as info:
        load(_Example, "ami", environ={"PUENTE_AMI_PORT": "eighty"})
    assert str(info.value) == "PUENTE_AMI_PORT: bad value 'eighty': expected an integer"
    assert info.value.problems == (str(info.value),)


def test_strict_yaml_finds_every_problem_and_keeps_what_it_could_read() -> None:
    text = "a: yes\nb: 1:30\nc: ok\nc: again\nd: [1, !!binary x]\n"
    value, errors = check_strict(text)
    # (tags are refused before anything is built: they are the only ones then)
    assert [e.problem for e in errors] == [
        "tags such as '!!binary' are not allowed (line 5); write a plain value"
    ]
    assert value is None
    text = "a: yes\nb: 1:30\nc: ok\nc: again\nd: [1, =, 2]\ne: 3\n"
    value, errors = check_strict(text)
    assert [(e.path, e.problem.split(" (")[0]) for e in errors] == [
        ("a", "YAML 1.1 boolean 'yes'"),
        ("b", "'1:30' is a base-60 number in YAML 1.1"),
        ("c", "duplicate key 'c'"),
        ("d[1]", "'=' is not a plain YAML value"),
    ]
    assert value == {"c": "ok", "d": [1, 2], "e": 3}
    with pytest.raises(StrictYamlError) as info:
        load_strict(text)
    assert info.value.path == "a"  # the first one, as before; ``errors``: all of them
    assert [e.path for e in info.value.errors] == ["a", "b", "c", "d[1]"]
    _, errors = check_strict("a: &x 1\nb: *x\nc: !foo 2\n")
    assert [e.problem.split(" (")[0] for e in errors] == [
        "anchors and aliases are not allowed",
        "anchors and aliases are not allowed",
        "tags such as '!foo' are not allowed",
    ]


def test_a_config_file_with_several_mistakes_names_them_all(tmp_path: Path) -> None:
    config = tmp_path / "puente.yaml"
    config.write_text("web:\n  port: 8080\n  port: 9090\n  secure_cookies: yes\nnode:\n  x: 1:30\n")
    with pytest.raises(SettingsError) as info:
        read_config_file(config)
    assert info.value.problems == (
        f"config file {config}: web.port: duplicate key 'port' (line 3)",
        f"config file {config}: web.secure_cookies: YAML 1.1 boolean 'yes' (line 4); "
        "write true or false",
        f"config file {config}: node.x: '1:30' is a base-60 number in YAML 1.1 (line 6); "
        'quote times, e.g. "08:00-21:00"',
    )


def test_load_settings_names_every_bad_setting_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "puente.yaml"
    config.write_text(
        "ami:\n  port: fifty\n  enabled: false\n"  # lines 1-3
        "web:\n  secure_cookies: yes\n  host:\n"  # lines 4-6
        "dialer:\n  tick_s: 0\n  bogus: 1\n"  # lines 7-9
        "webb:\n  port: 1\n"
    )
    monkeypatch.setenv("PUENTE_AGI_PORT", "forty")
    monkeypatch.setenv("PUENTE_NODE_LOG_LEVEL", "loud")
    monkeypatch.setenv("PUENTE_DATABASE_MAX_CONNECTIONS", "0")
    with pytest.raises(SettingsError) as info:
        load_settings(config, demo=False)
    problems = info.value.problems
    expected = [
        f"config file {config}: web.secure_cookies: YAML 1.1 boolean 'yes' (line 5)",
        f"config file {config}: unknown sections ['webb']",
        f"config file {config}:2: ami.port: bad value 'fifty': expected an integer",
        "PUENTE_AGI_PORT: bad value 'forty': expected an integer",
        f"config file {config}:9: [dialer] has no setting 'bogus'",
        f"dialer settings: refresh_s must be in [0.1, 300] and tick_s in [0.05, 10] "
        f"(tick_s: config file {config}:8)",
        f"config file {config}:6: web.host: no value given (expected str)",
        "node settings: log_level 'loud' is not DEBUG/INFO/WARNING/ERROR "
        "(log_level: PUENTE_NODE_LOG_LEVEL)",
        "max_connections",
    ]
    for want in expected:
        assert sum(want in p for p in problems) == 1, (want, problems)
    assert len(problems) == len(expected)


def test_numbers_are_ascii_digits_and_finite() -> None:
    # int() and float() also took other scripts' digits (fullwidth 12 listened on port 12), "1_0",
    # "inf" (an AudioSocket max_outgoing_s of inf failed every call), and past 4,300 digits
    # int() raised instead of naming the setting.
    for env in (
        {"PUENTE_AMI_PORT": "\uff11\uff12"},
        {"PUENTE_AMI_PORT": "1_0"},
        {"PUENTE_AMI_PORT": "9" * 4301},
        {"PUENTE_AMI_TIMEOUT_S": "inf"},
        {"PUENTE_AMI_TIMEOUT_S": "nan"},
        {"PUENTE_AMI_TIMEOUT_S": "1e999"},
        {"PUENTE_AMI_TIMEOUT_S": "\uff11"},
    ):
        with pytest.raises(SettingsError, match=f"{next(iter(env))}: bad value"):
            load(_Example, "ami", environ=env)
    ok = load(_Example, "ami", environ={"PUENTE_AMI_PORT": " 5039 ", "PUENTE_AMI_TIMEOUT_S": "2.5"})
    assert (ok.port, ok.timeout_s) == (5039, 2.5)
    assert load(_Example, "ami", file_values={"timeout_s": 3}).timeout_s == 3.0
    with pytest.raises(SettingsError, match="finite"):
        load(_Example, "ami", file_values={"timeout_s": 10**400})
