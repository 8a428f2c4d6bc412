"""AMI: every recorded Asterisk 22 stream through the cores, with concrete facts asserted."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx import LocalProtocolError, RemoteProtocolError
from pbx.ami import (
    NEED_DATA,
    ActionResult,
    AmiClientProtocol,
    AmiMessage,
    Banner,
    ConnectionClosed,
    MessageFramer,
    State,
    Unsolicited,
    encode_message,
)
from tests.support import transcripts

S2C = sorted(
    [p for folder in ("ami", "sip", "amd", "load") for p in transcripts.names(folder, ".s2c.txt")]
    + transcripts.names("agi", ".ami.s2c.txt")
    + transcripts.names("audiosocket", ".ami.s2c.txt")
)


def messages(raw: bytes) -> list[AmiMessage]:
    framer = MessageFramer()
    framer.push(raw)
    assert framer.take_line() == b"Asterisk Call Manager/11.0.0"
    return framer.feed(b"")


def by_name(msgs: list[AmiMessage], name: str) -> list[AmiMessage]:
    return [m for m in msgs if m.name == name]


@pytest.mark.parametrize("rel", S2C)
def test_every_stream_parses_and_matches_the_summary_count(rel: str) -> None:
    msgs = messages(transcripts.read(rel))
    summary = transcripts.read(rel.replace(".s2c.txt", ".summary.txt")).decode().splitlines()
    assert len(msgs) == len([line for line in summary if line.strip()])
    for m in msgs:
        assert m.kind in ("Event", "Response")
        assert m.pairs[0][0] in ("Event", "Response")


def test_banner_login_and_output_headers() -> None:
    msgs = messages(transcripts.read("ami/01-login-ping-coresettings.s2c.txt"))
    assert [m.name for m in msgs[:3]] == ["Success", "FullyBooted", "SuccessfulAuth"]
    assert msgs[0]["Message"] == "Authentication accepted"
    version = next(m for m in msgs if m.get("Output") and "Asterisk 22" in m.get("Output", ""))
    assert version.get_all("Output")[0].startswith("Asterisk 22.10.1")
    modules = [m for m in msgs if len(m.get_all("Output")) > 1]
    assert modules  # `module show like agi`: several Output: headers, order kept
    unknown = next(m for m in msgs if (m.get("Message") or "").startswith("Invalid/unknown"))
    assert unknown.response == "Error"
    assert msgs[-1].name == "Goodbye"
    assert msgs[-1]["Message"] == "Thanks for all the fish."


def test_wrong_password_then_close() -> None:
    msgs = messages(transcripts.read("ami/02-login-wrong-password.s2c.txt"))
    assert [(m.name, m.get("Message")) for m in msgs] == [("Error", "Authentication failed")]


@pytest.mark.parametrize(
    ("rel", "reason", "cause", "dial_status"),
    [
        ("sip/02-pjsip-486-busy", "0", "17", ["BUSY"]),
        ("sip/03-pjsip-180-noanswer-timeout5000", "3", "19", []),
        ("sip/04-pjsip-503-unavailable", "0", "34", ["CONGESTION"]),
        ("sip/05-pjsip-603-decline", "0", "21", ["NOANSWER"]),
        ("ami/04-originate-local-busy", "5", None, None),
        ("ami/05-originate-local-congestion", "8", None, None),
    ],
)
def test_outcome_table(
    rel: str, reason: str, cause: str | None, dial_status: list[str] | None
) -> None:
    msgs = messages(transcripts.read(f"{rel}.s2c.txt"))
    (resp,) = by_name(msgs, "OriginateResponse")
    assert resp["Response"] == "Failure"
    assert resp["Reason"] == reason
    assert resp["Uniqueid"] == "<unknown>"
    assert "/" in resp["Channel"]  # the dial string, not a channel name
    if cause is not None:
        assert [m["Cause"] for m in by_name(msgs, "Hangup")] == [cause]
    if dial_status is not None:
        assert [m["DialStatus"] for m in by_name(msgs, "DialEnd")] == dial_status


def test_load_run_outcome_mapping_for_every_call() -> None:
    msgs = messages(transcripts.read("load/01-mixed-campaign.s2c.txt"))
    responses = by_name(msgs, "OriginateResponse")
    assert len(responses) == 120
    # The originated channel's Uniqueid is the ChannelId load-NNN.
    cause = {m["Uniqueid"]: m["Cause"] for m in by_name(msgs, "Hangup")}
    dial_end = {m["DestUniqueid"]: m["DialStatus"] for m in by_name(msgs, "DialEnd")}
    seen = Counter()
    for m in responses:
        _, number, target = m["ActionID"].split("-", 2)
        call = f"load-{number}"
        seen[
            (target.split("-")[0], m["Response"], m["Reason"], cause[call], dial_end.get(call))
        ] += 1
    expected = {
        ("5070", "Success", "4", "16", "ANSWER"),
        ("local", "Success", "4", "16", "ANSWER"),
        ("5071", "Failure", "0", "17", "BUSY"),
        ("5072", "Failure", "3", "19", None),  # rang, timed out: no DialEnd
        ("5073", "Failure", "0", "34", "CONGESTION"),
        ("5074", "Failure", "0", "21", "NOANSWER"),
    }
    assert set(seen) == expected
    assert sum(seen.values()) == 120


def test_channel_id_sets_both_local_uniqueids() -> None:
    msgs = messages(transcripts.read("ami/03-originate-local-answer.s2c.txt"))
    uniqueids = {m["Uniqueid"] for m in by_name(msgs, "Newchannel")}
    assert uniqueids == {"lead42-call1", "lead42-call1;2"}
    (resp,) = by_name(msgs, "OriginateResponse")
    assert resp["Response"] == "Success"
    assert resp["Reason"] == "4"
    assert resp["Uniqueid"] == "lead42-call1"


@pytest.mark.parametrize(
    ("rel", "complete", "items"),
    [
        ("ami/13-setvar-getvar-status-hangup", "StatusComplete", ["1", "0"]),
        ("ami/13-setvar-getvar-status-hangup", "CoreShowChannelsComplete", ["2"]),
        ("ami/11-queue", "QueueSummaryComplete", None),
    ],
)
def test_event_lists_complete_with_their_item_counts(
    rel: str, complete: str, items: list[str] | None
) -> None:
    replay = ClientReplay(f"{rel}")
    results = [r for r in replay.results if r.complete is not None and r.complete.name == complete]
    assert results
    for r in results:
        assert not r.list_items_mismatch
        assert int(r.complete["ListItems"]) == len(r.events)
    if items is not None:
        assert [r.complete["ListItems"] for r in results] == items


class ClientReplay:
    """Drive the client protocol with the recorded actions and bytes, in recorded order."""

    def __init__(self, name: str, split: int | None = None) -> None:
        self.proto = AmiClientProtocol()
        self.results: list[ActionResult] = []
        self.unsolicited: list[AmiMessage] = []
        self.sent: list[str] = []
        self.refused: list[str] = []
        framer = MessageFramer()
        for chunk in transcripts.log_chunks(f"{name}.log.txt"):
            if chunk.direction == "C->S":
                for action in framer.feed(chunk.data):
                    pairs = action.pairs
                    aid = action["ActionID"]
                    try:
                        got, _ = self.proto.send_action(action.name, pairs[2:], action_id=aid)
                    except LocalProtocolError:
                        self.refused.append(aid)  # an illegal send puts the core in ERROR
                        assert self.proto.state is State.ERROR
                        return
                    assert got == aid
                    self.sent.append(aid)
            elif chunk.direction == "S->C":
                pieces = (
                    [chunk.data]
                    if split is None
                    else [chunk.data[i : i + split] for i in range(0, len(chunk.data), split)]
                )
                for piece in pieces:
                    self.proto.receive_data(piece)
                    self._drain()
        self.proto.receive_data(b"")
        self._drain()

    def _drain(self) -> None:
        while (ev := self.proto.next_event()) is not NEED_DATA:
            if isinstance(ev, ActionResult):
                self.results.append(ev)
            elif isinstance(ev, Unsolicited):
                self.unsolicited.append(ev.message)
            else:
                assert isinstance(ev, Banner | ConnectionClosed)


@pytest.mark.parametrize(
    "name",
    [
        "ami/01-login-ping-coresettings",
        "ami/03-originate-local-answer",
        "ami/07-originate-invalid-technology",
        "ami/09-originate-sync",
        "ami/11-queue",
        "ami/12-redirect",
        "ami/13-setvar-getvar-status-hangup",
        "ami/14-queue-waiting-caller-abandon",
        "sip/01-pjsip-answer",
        "load/01-mixed-campaign",
        "audiosocket/07-pjsip-answer-pcap-audiosocket.ami",
    ],
)
def test_every_action_gets_exactly_one_result(name: str) -> None:
    replay = ClientReplay(name)
    assert sorted(r.action_id for r in replay.results) == sorted(replay.sent)
    assert replay.proto.pending_action_ids == []
    assert replay.proto.state is State.CLOSED
    originates = {r.action_id for r in replay.results if r.action == "Originate" and r.ok}
    async_responses = {m["ActionID"] for m in replay.unsolicited if m.name == "OriginateResponse"}
    assert async_responses <= {r.action_id for r in replay.results if r.action == "Originate"}
    if name.startswith("load"):
        assert len(originates) == 120
        assert len(async_responses) == 120


def test_wrong_password_replay_refuses_actions_before_login() -> None:
    replay = ClientReplay("ami/02-login-wrong-password")
    assert [(r.action, r.ok, r.message) for r in replay.results] == [
        ("Login", False, "Authentication failed")
    ]
    assert replay.refused == ["rig-10"]  # no Ping on a session that is not logged in
    assert replay.proto.state is State.ERROR


@pytest.mark.parametrize(
    "name", ["ami/01-login-ping-coresettings", "ami/13-setvar-getvar-status-hangup"]
)
def test_split_at_every_offset_gives_identical_messages(name: str) -> None:
    raw = transcripts.read(f"{name}.s2c.txt")[:6000]
    ref = MessageFramer()
    ref.push(raw)
    ref.take_line()
    expected = [m.pairs for m in ref.feed(b"")]
    for cut in range(1, len(raw)):
        f = MessageFramer()
        f.push(raw[:cut])
        got_banner = f.take_line()
        msgs = []
        if got_banner is None:
            f.push(raw[cut:])
            assert f.take_line() == b"Asterisk Call Manager/11.0.0"
            msgs = f.feed(b"")
        else:
            msgs = f.feed(b"") + f.feed(raw[cut:])
        assert [m.pairs for m in msgs] == expected, cut


def test_byte_by_byte_and_recorded_chunking_agree() -> None:
    a = ClientReplay("ami/11-queue", split=1)
    b = ClientReplay("ami/11-queue")
    assert [(r.action_id, [e.pairs for e in r.events]) for r in a.results] == [
        (r.action_id, [e.pairs for e in r.events]) for r in b.results
    ]
    assert [m.pairs for m in a.unsolicited] == [m.pairs for m in b.unsolicited]
    lone = [c for c in transcripts.log_chunks("ami/11-queue.log.txt") if c.data == b"\r\n"]
    assert lone  # the recording has a lone CRLF chunk, and it is handled


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_garbage_raises_only_remote_protocol_errors(blob: bytes) -> None:
    proto = AmiClientProtocol(max_message_bytes=4096)
    try:
        proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n" + blob)
        proto.drain()
        proto.receive_data(blob)
        proto.drain()
    except RemoteProtocolError:
        assert proto.state is State.ERROR


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_streams_never_escape_the_protocol_error(data: st.DataObject) -> None:
    raw = bytearray(transcripts.read("ami/13-setvar-getvar-status-hangup.s2c.txt")[:3000])
    for _ in range(data.draw(st.integers(0, 20))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    proto = AmiClientProtocol()
    try:
        proto.receive_data(bytes(raw))
        proto.drain()
    except RemoteProtocolError:
        pass


_name = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
_value = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_name, _value), min_size=1, max_size=12))
def test_encode_then_parse_round_trips(pairs: list[tuple[str, str]]) -> None:
    pairs = [("Event", "X"), *pairs]
    framer = MessageFramer()
    (msg,) = framer.feed(encode_message(pairs))
    assert msg.pairs == pairs


@pytest.mark.parametrize("value", ["a\r\nAction: Hangup", "a\nb", "a\rb"])
def test_header_injection_is_refused(value: str) -> None:
    proto = AmiClientProtocol()
    proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(LocalProtocolError, match="CR or LF"):
        proto.send_action("Login", [("Username", value)])
    with pytest.raises(LocalProtocolError, match="not a valid token"):
        encode_message([("Bad:Name", "x")])


def test_oversized_message_is_a_clear_error() -> None:
    proto = AmiClientProtocol(max_message_bytes=1000)
    proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(RemoteProtocolError, match="over the 1000-byte cap"):
        proto.receive_data(b"Event: X\r\nData: " + b"x" * 2000)
    assert proto.state is State.ERROR
