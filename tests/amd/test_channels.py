"""The channel registry learns names from the events real Asterisk sends."""

from __future__ import annotations

from pathlib import Path

from dialer.amd import ChannelRegistry
from pbx.ami import MessageFramer

RECORDED = (
    Path(__file__).resolve().parent.parent
    / "data/asterisk-transcripts/audiosocket/07-pjsip-answer-pcap-audiosocket.ami.s2c.txt"
)
UUID = "3b6f0c2e-8a41-4c7d-9e15-2f7a9d0b4c61"


def _feed(registry: ChannelRegistry, data: bytes) -> list[str]:
    """Feed every event of a recorded stream; the channel known for UUID after each event."""
    seen = []
    framer = MessageFramer()
    raw = data[data.index(b"\r\n") + 2 :]  # the banner line
    for msg in framer.feed(raw):
        if msg.name == "Newchannel":
            registry.on_newchannel(msg)
        elif msg.name == "Hangup":
            registry.on_hangup(msg)
        seen.append(registry.channel(UUID) or "")
    return seen


def test_the_recorded_call_is_named_from_newchannel_to_hangup() -> None:
    registry = ChannelRegistry()
    seen = _feed(registry, RECORDED.read_bytes())
    assert "PJSIP/sipp-00000000" in seen
    assert registry.channel(UUID.upper()) is None  # gone after its Hangup
    assert len(registry) == 0


def test_only_uuid_channels_are_kept_and_the_oldest_make_room() -> None:
    registry = ChannelRegistry(max_channels=2)
    registry.on_newchannel({"Uniqueid": "1795335254.12", "Channel": "Local/100@agents-1;1"})
    assert len(registry) == 0
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    for i, uid in enumerate(ids):
        registry.on_newchannel({"Uniqueid": uid, "Channel": f"PJSIP/trunk-{i:08x}"})
    assert registry.channel(ids[0]) is None
    assert registry.channel(ids[2].upper()) == "PJSIP/trunk-00000002"
    assert registry.evicted_total == 1
    registry.on_hangup({"Uniqueid": ids[1]})
    assert registry.channel(ids[1]) is None
