"""The simulator's channel languages are what Asterisk with asterisk_conf/ gives them.

A channel's language is its endpoint's (pjsip.conf ``language``: the trunk's and the agents'
phones' ``es``), asterisk.conf's default (``en``, the recorded rig's: agi/01-05) when the
endpoint sets none, and what ``Set(CHANNEL(language)=...)`` (or an AGI ``SET VARIABLE``) makes
it. ``agi_language`` is the channel's language: a channel variable such as ``PUENTE_LANG``
does not change it (before: the simulator's outbound channels said ``en``, and its
``agi_language`` followed ``PUENTE_LANG``).
"""

from __future__ import annotations

from pathlib import Path

from pbx.sim._actions import handle_action
from pbx.sim._core import Broadcast, SimSettings, StartAgi
from pbx.sim._dialplan import DEFAULT_LANGUAGE, load_endpoint_languages
from tests.pbx.sim.test_core import (
    ATTEMPT,
    _originate_pairs,
    make_core,
    run_until,
    voicemail_said,
)

RIG_PJSIP = (
    Path(__file__).resolve().parents[2] / "data/asterisk-transcripts/rig/etc-asterisk/pjsip.conf"
)


def _events(out: list) -> list[dict[str, str]]:
    return [dict(o.pairs) for o in out if isinstance(o, Broadcast)]


def test_endpoint_languages_come_from_pjsip_conf() -> None:
    assert load_endpoint_languages() == {"trunk": "es", "agent101": "es", "agent102": "es"}
    assert load_endpoint_languages(RIG_PJSIP) == {}  # the rig's sipp endpoint: none set
    assert SimSettings().language_of("trunk") == "es"
    assert SimSettings().language_of("sipp") == DEFAULT_LANGUAGE == "en"


def _agentless_agi(puente_lang: str | None) -> tuple[list, StartAgi]:
    """An answered agentless call, up to its AGI()."""
    core = make_core("human", ring_s={"dist": "fixed", "value": 2.0})
    pairs = [p for p in _originate_pairs("collections") if p[1] != "PUENTE_MODE=predictive"]
    pairs += [("Variable", "PUENTE_MODE=agentless"), ("Variable", "PUENTE_FLOW=collections")]
    if puente_lang is not None:
        pairs.append(("Variable", f"PUENTE_LANG={puente_lang}"))
    out = handle_action(core, 1, pairs, 0.0)
    out += run_until(core, 2.0)
    (channel,) = [c.snap.name for c in core.channels.values()]
    setvar = [("Action", "Setvar"), ("ActionID", "s1"), ("Channel", channel)]
    out += handle_action(core, 1, [*setvar, ("Variable", "AMDSTATUS"), ("Value", "HUMAN")], 2.5)
    out += core.media_ended(ATTEMPT, 2.6)
    out += run_until(core, 3.0)
    (agi,) = [o for o in out if isinstance(o, StartAgi)]
    return out, agi


def test_an_outbound_channel_speaks_the_trunks_language_whatever_puente_lang_says() -> None:
    for puente_lang in (None, "en", "es"):
        out, agi = _agentless_agi(puente_lang)
        new = next(e for e in _events(out) if e.get("Event") == "Newchannel")
        assert new["Language"] == "es", puente_lang
        assert dict(agi.env)["agi_language"] == "es", puente_lang


def test_the_ivr_changing_the_channels_language_is_what_the_dialplan_sees() -> None:
    core = make_core("human", ring_s={"dist": "fixed", "value": 2.0})
    handle_action(core, 1, _originate_pairs("collections"), 0.0)
    run_until(core, 2.0)
    (ch,) = core.channels.values()
    # AGI SET VARIABLE CHANNEL(language) "en": a function write (no VarSet), as in Asterisk.
    assert core.set_variable(ch.id, "CHANNEL(language)", "en") == []
    assert ch.snap.language == "en"
    assert "CHANNEL(language)" not in ch.variables
    out = core.set_variable(ch.id, "PUENTE_NEXT", "agent")
    assert _events(out)[0]["Language"] == "en"


def test_the_message_without_a_debtor_language_is_in_the_trunks() -> None:
    # machine: no PUENTE_LANG, no Set(CHANNEL(language)): Playback and SayDigits speak the
    # channel's language, the trunk endpoint's (before: en).
    said = voicemail_said("PUENTE_VM=puente/es/voicemail_limited")
    assert said == [("Playback", "es"), ("SayDigits", "es")]
