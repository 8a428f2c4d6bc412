"""ComplianceSettings.validate: a bad value is refused at start, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance import ComplianceSettings


def test_defaults_are_valid() -> None:
    ComplianceSettings().validate()
    ComplianceSettings(margin_s=0, timeout_s=0.3).validate()


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (ComplianceSettings(timeout_s=-1), "timeout_s -1 must be > 0"),
        (ComplianceSettings(timeout_s=0), "timeout_s 0 must be > 0"),
        (ComplianceSettings(timeout_s=float("nan")), "timeout_s nan must be > 0"),
        (ComplianceSettings(timeout_s=float("inf")), "timeout_s inf must be > 0"),
        (ComplianceSettings(margin_s=-100), "margin_s -100 must be between 0 and 3600"),
        (ComplianceSettings(margin_s=3601), "margin_s 3601 must be between 0 and 3600"),
        (ComplianceSettings(pack_dir=Path("/nonexistent")), "'/nonexistent' is not a directory"),
        # a name too long for the file system: OSError, a traceback at start
        (ComplianceSettings(pack_dir=Path("/tmp/" + "x" * 300)), "File name too long"),
    ],
)
def test_bad_values_are_refused_by_name(settings: ComplianceSettings, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        settings.validate()
    assert problem in str(info.value)


def test_an_empty_pack_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no rule packs"):
        ComplianceSettings(pack_dir=tmp_path).validate()
    (tmp_path / "us_federal.yaml").write_text("pack: us_federal\n")
    ComplianceSettings(pack_dir=tmp_path).validate()


def test_the_settings_loader_calls_validate() -> None:
    from puente.settings import SettingsError, load

    env = {"PUENTE_COMPLIANCE_TIMEOUT_S": "-1"}
    with pytest.raises(SettingsError, match="compliance settings: timeout_s -1"):
        load(ComplianceSettings, "compliance", environ=env)
