"""AudioSocket settings: the keep-alive interval must stay well inside app_audiosocket's 2 s."""

from __future__ import annotations

import pytest

from pbx.audiosocket import AudioSocketServer, AudioSocketSettings
from puente.settings import SettingsError, load


async def _handler(call: object) -> None:  # never called
    raise AssertionError


def test_defaults_are_valid_and_keep_alive_every_500_ms() -> None:
    s = AudioSocketSettings()
    s.validate()
    assert s.keepalive_interval_ms == 500


@pytest.mark.parametrize("interval_ms", [40, 100, 500, 1000])
def test_keepalive_interval_from_one_tick_to_one_second(interval_ms: int) -> None:
    AudioSocketSettings(keepalive_interval_ms=interval_ms).validate()


@pytest.mark.parametrize(
    ("settings", "tick_ms"),
    [
        ({"keepalive_interval_ms": 1001}, 40),  # too close to the 2 s of app_audiosocket
        ({"keepalive_interval_ms": 2000}, 40),
        ({"keepalive_interval_ms": 39}, 40),  # shorter than a tick: it could not be kept
        ({"keepalive_interval_ms": 0}, 40),
        ({"keepalive_interval_ms": 60, "frames_per_tick": 4}, 80),
    ],
)
def test_keepalive_interval_out_of_range_fails_naming_it(
    settings: dict[str, int], tick_ms: int
) -> None:
    with pytest.raises(ValueError, match=rf"keepalive_interval_ms .*\({tick_ms} ms\) and 1000 ms"):
        AudioSocketSettings(**settings).validate()


def test_the_server_refuses_invalid_settings() -> None:
    with pytest.raises(ValueError, match="keepalive_interval_ms"):
        AudioSocketServer(_handler, AudioSocketSettings(keepalive_interval_ms=5000))


def test_the_environment_sets_it_and_a_bad_value_fails_at_start() -> None:
    env = {"PUENTE_AUDIOSOCKET_KEEPALIVE_INTERVAL_MS": "250"}
    assert load(AudioSocketSettings, "audiosocket", environ=env).keepalive_interval_ms == 250
    env = {"PUENTE_AUDIOSOCKET_KEEPALIVE_INTERVAL_MS": "1900"}
    with pytest.raises(SettingsError, match="keepalive_interval_ms 1900"):
        load(AudioSocketSettings, "audiosocket", environ=env)


@pytest.mark.parametrize("name", ["uuid_timeout_s", "idle_timeout_s", "call_timeout_s",
                                  "max_outgoing_s"])  # fmt: skip
def test_times_are_bounded(name: str) -> None:
    # max_outgoing_s of 1e308 passed (> 0) and sized each call's buffer: OverflowError per call.
    for bad in (0, -1, 1e308, 86_401):
        with pytest.raises(ValueError, match=rf"{name} must be > 0 and at most 86,400"):
            AudioSocketSettings(**{name: bad}).validate()
    AudioSocketSettings(**{name: 86_400}).validate()
