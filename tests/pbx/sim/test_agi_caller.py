"""The simulator's GET DATA on a missing prompt file answers as Asterisk 22 does."""

from __future__ import annotations

from pbx.sim._agi_caller import AgiResponder


def test_get_data_on_a_missing_prompt_is_minus_one_on_a_live_channel() -> None:
    r = AgiResponder(keys=["1234#"], missing_sounds=frozenset({"puente/es/enter_account"}))
    ans = r.respond("GET DATA puente/es/enter_account 7000 16")
    # ast_app_getdata_full: ast_streamfile fails, -1 before a key is read; the caller stays.
    assert ans.text == "200 result=-1\n"
    assert not ans.hangup_after
    assert ans.duration_s == 0.0
    assert not r.dead
    assert r.keys == ["1234#"]  # no key consumed
    assert r.respond("CHANNEL STATUS").text == "200 result=6\n"  # up
    assert r.respond("GET DATA puente/es/fallback 7000 16").text == "200 result=1234\n"


def test_get_data_with_no_prompt_reads_the_keys_at_once() -> None:
    r = AgiResponder(keys=["12", "9#"], missing_sounds=frozenset({"silence/1"}), prompt_s=1.5)
    assert r.respond("GET DATA silence/1 3000 4").text == "200 result=-1\n"
    ans = r.respond('GET DATA "" 3000 4')
    assert ans.text == "200 result=12 (timeout)\n"
    assert ans.duration_s == 3.0 + r.key_s * 2  # no prompt played
    assert r.respond("GET DATA silence/2 3000 4").duration_s == 1.5 + r.key_s * 2


def test_a_hang_up_during_get_data_is_still_a_hang_up() -> None:
    r = AgiResponder(keys=["H"], missing_sounds=frozenset({"puente/es/enter_card"}))
    assert r.respond("GET DATA puente/es/enter_card 10000 19").text == "200 result=-1\n"
    assert r.keys == ["H"]  # the missing file first; the caller hangs up on the next one
    ans = r.respond("GET DATA puente/es/card 10000 19")
    assert (ans.text, ans.hangup_after) == ("200 result=-1\n", True)
