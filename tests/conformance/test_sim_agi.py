"""The simulator's FastAGI answers are the recorded Asterisk 22 answers (agi/01-full-session)."""

from __future__ import annotations

from pbx.sim._agi_caller import AgiResponder
from tests.support import transcripts


def _recorded_responses() -> list[str]:
    raw = transcripts.read("agi/01-full-session.from-asterisk.txt").decode()
    body = raw.split("\n\n", 1)[1]
    responses, block = [], []
    for line in body.splitlines(keepends=True):
        if block or line.startswith("520-"):
            block.append(line)
            if line.startswith("520 "):
                responses.append("".join(block))
                block = []
            continue
        responses.append(line)
    return responses


def test_full_session_answers_match_the_recording() -> None:
    commands = transcripts.read("agi/01-full-session.to-asterisk.txt").decode().splitlines()
    recorded = _recorded_responses()
    # The recorded caller: '5' in demo-congrats, '1234', nothing, '9#', '7', nothing.
    r = AgiResponder(
        keys=["!5", "1234", "", "9#", "7", ""], missing_sounds=frozenset({"no-such-file"})
    )
    r.variables["CALLERID(num)"] = "5550100"
    r.variables["CHANNEL"] = "Local/listen@answer-and-talk-00000015;1"
    answers = []
    for command in commands:
        text = r.respond(command).text
        if command == "HANGUP":
            answers.append(text)
            answers.append("HANGUP\n")  # the adapter writes the line before the next response
            continue
        answers.append(text)

    # endpos depends on the real file lengths: compare the result part.
    def norm(s: str) -> str:
        return s.split(" endpos=")[0] + ("\n" if " endpos=" in s else "")

    assert [norm(a) for a in answers] == [norm(x) for x in recorded]


def test_scripted_caller_hangs_up_when_the_script_ends() -> None:
    r = AgiResponder(keys=["12#"])
    assert r.respond("GET DATA enter-account 5000 10").text == "200 result=12\n"
    ans = r.respond("GET DATA enter-dob 5000 8")
    assert ans.text == "200 result=-1\n"
    assert ans.hangup_after


def test_get_data_stops_at_max_digits_and_reports_partial_timeouts() -> None:
    r = AgiResponder(keys=["123456", "12"])
    assert r.respond("GET DATA p 3000 4").text == "200 result=1234\n"
    assert r.respond("GET DATA p 3000 4").text == "200 result=12 (timeout)\n"
