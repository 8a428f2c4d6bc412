"""The composition root puts AMD on the AudioSocket calls, configured by ``[amd]``."""

from __future__ import annotations

from typing import Any

import pytest

from puente.settings import SettingsError
from puente.wiring import (
    AmdComponent,
    AmiComponent,
    AudioSocketComponent,
    build_components,
    load_component_settings,
)

NO_DIALER: dict[str, dict[str, Any]] = {"dialer": {"enabled": False}, "ami": {"secret": "x"}}


def _build(**sections: dict[str, Any]) -> list[Any]:
    settings = load_component_settings({**NO_DIALER, **sections}, demo=False)
    return build_components(settings, pool=None, demo=False, node="n1")


def test_amd_handles_the_audiosocket_calls_and_binds_after_the_ami_client() -> None:
    components = _build(amd={"max_concurrent": 50, "verdict_margin_ms": 250})
    names = [c.name for c in components]
    assert names.index("amd") == names.index("ami") + 1  # before anything originates
    audio = next(c for c in components if isinstance(c, AudioSocketComponent))
    amd = next(c for c in components if isinstance(c, AmdComponent)).amd
    assert audio.server.handler == amd.handle
    assert amd.on_tick in audio.server.tick_listeners
    assert amd.settings.max_concurrent == 50
    assert amd.settings.verdict_margin_ms == 250


def test_without_amd_or_without_ami_calls_are_handed_back() -> None:
    for sections in ({"amd": {"enabled": False}}, {"ami": {"enabled": False, "secret": "x"}}):
        components = _build(**sections)
        assert not any(isinstance(c, AmdComponent) for c in components)
        audio = next(c for c in components if isinstance(c, AudioSocketComponent))
        assert audio.server.handler.__name__ == "_hand_back"
        assert not audio.server.tick_listeners
    assert any(isinstance(c, AmiComponent) for c in _build(amd={"enabled": False}))


def test_bad_amd_settings_stop_the_start_with_a_message_naming_them(tmp_path) -> None:
    with pytest.raises(SettingsError, match="max_concurrent"):
        _build(amd={"max_concurrent": 0})
    with pytest.raises(SettingsError, match=r"amd\.verdict_margin_ms"):
        _build(amd={"verdict_margin_ms": "soon"})
    detector = tmp_path / "detector.yaml"
    detector.write_text("greeting_ms: -5\n")
    with pytest.raises(SettingsError, match=r"detector\.yaml.*greeting_ms"):
        _build(amd={"detector_file": str(detector)})
    with pytest.raises(SettingsError, match="no setting 'speed'"):
        _build(amd={"speed": 2})
