"""The agent board from queue events: free, busy, paused, wrapping up."""

from __future__ import annotations

from dialer.agents import AgentBoard

MEMBER = {"Queue": "q", "Interface": "Local/100@agents", "MemberName": "Ana", "Status": "1",
          "Paused": "0", "InCall": "0", "Wrapuptime": "10"}  # fmt: skip


def test_a_call_then_wrap_up_then_free() -> None:
    b = AgentBoard("q")
    assert b.event("QueueMemberAdded", MEMBER, 0.0)  # logged in: free
    assert b.free(0.0) == 1
    assert not b.event("AgentConnect", {"Queue": "q", "Interface": "Local/100@agents"}, 1.0)
    assert b.free(1.0) == 0
    assert b.busy_elapsed(31.0) == (30.0,)
    # The call ends: wrap-up (10 s) starts now, whatever status events follow.
    assert not b.event("AgentComplete", {"Queue": "q", "Interface": "Local/100@agents"}, 40.0)
    assert not b.event("QueueMemberStatus", MEMBER, 41.0)
    assert b.free(45.0) == 0
    # For the pacer: in wrap-up, no longer on a call, free in a known 5 s.
    assert (b.busy_elapsed(45.0), b.wrap_left(45.0)) == ((), (5.0,))
    assert b.free(50.0) == 1
    assert (b.busy_elapsed(50.0), b.wrap_left(50.0)) == ((), ())
    # What the pacer learns from: the call's talk time, and the queue's wrap-up.
    assert list(b.talk_s) == [39.0]
    assert b.wrapup_s() == 10.0
    b.event("AgentComplete", {"Queue": "q", "Interface": "Local/100@agents"}, 60.0)
    assert list(b.talk_s) == [39.0]  # a second Complete without a call adds nothing


def test_pause_ringing_other_queues_and_removal() -> None:
    b = AgentBoard("q")
    b.event("QueueMemberAdded", MEMBER, 0.0)
    assert not b.event("QueueMemberPause", {**MEMBER, "Paused": "1"}, 1.0)
    assert b.free(1.0) == 0
    assert b.event("QueueMemberPause", MEMBER, 2.0)  # back from the pause: free again
    assert not b.event("QueueMemberStatus", {**MEMBER, "Status": "6"}, 3.0)  # ringing
    assert b.free(3.0) == 0
    assert not b.event("QueueMemberAdded", {**MEMBER, "Queue": "other"}, 4.0)
    b.event("QueueMemberRemoved", MEMBER, 5.0)
    assert b.logged_in == 0


def test_a_member_without_its_own_wrap_up_gets_the_queues() -> None:
    # What real Asterisk sends for a member added by QueueAdd to a queue whose queues.conf has
    # wrapuptime = 5: the member's own wrap-up, 0. app_queue applies the queue's 5 s.
    b = AgentBoard("q", queue_wrapup_s=5.0)
    b.event("QueueMemberAdded", {**MEMBER, "Wrapuptime": "0"}, 0.0)
    b.event("AgentConnect", {"Queue": "q", "Interface": "Local/100@agents"}, 1.0)
    b.event("AgentComplete", {"Queue": "q", "Interface": "Local/100@agents"}, 31.0)
    assert b.event("QueueMemberStatus", {**MEMBER, "Wrapuptime": "0"}, 31.0) is False
    assert (b.free(35.9), b.wrap_left(33.0)) == (0, (3.0,))
    assert b.free(36.0) == 1
    assert b.wrapup_s() == 5.0
    # A member with a wrap-up of its own (AddQueueMember's wrapuptime) keeps it.
    b.event("QueueMemberAdded", {**MEMBER, "Interface": "Local/101@agents"}, 40.0)
    assert b.wrapup_s() == 7.5
    assert AgentBoard("q", queue_wrapup_s=5.0).wrapup_s() == 5.0  # nobody logged in yet


def test_a_racing_status_event_does_not_lose_the_call_or_its_talk_time() -> None:
    # Recorded (load/01-mixed-campaign, call load-029): AgentConnect, then a device-state
    # QueueMemberStatus saying InCall: 0 while the agent talks.
    b = AgentBoard("q")
    b.event("QueueMemberAdded", MEMBER, 0.0)
    b.event("AgentConnect", {"Queue": "q", "Interface": "Local/100@agents"}, 1.0)
    b.event("QueueMemberStatus", {**MEMBER, "Status": "1", "InCall": "0"}, 1.1)
    assert (b.free(5.0), b.busy_elapsed(5.0)) == (0, (4.0,))
    b.event("AgentComplete", {"Queue": "q", "Interface": "Local/100@agents"}, 61.0)
    assert list(b.talk_s) == [60.0]


def test_a_rebuilt_board_keeps_the_wrap_up_of_a_call_that_just_ended() -> None:
    # After an AMI reconnect the board is rebuilt from QueueStatus: LastCall (epoch seconds)
    # says when the member's last call ended; the queue's wrap-up runs from there.
    b = AgentBoard("q", queue_wrapup_s=10.0)
    entry = {**MEMBER, "Wrapuptime": "0", "LastCall": "1000000"}
    b.event("QueueMember", entry, 500.0, wall_now=1_000_004.0)
    assert (b.free(505.9), b.wrap_left(500.0)) == (0, (6.0,))
    assert b.free(506.0) == 1
    b = AgentBoard("q", queue_wrapup_s=10.0)
    b.event("QueueMember", {**entry, "LastCall": "0"}, 500.0, wall_now=1_000_004.0)
    assert b.free(500.0) == 1  # never took a call


def test_an_agents_status_for_the_wallboard_follows_the_board() -> None:
    b = AgentBoard("q")
    b.event("QueueMemberAdded", MEMBER, 0.0)
    agent = b.agents["Local/100@agents"]
    seen = [agent.status(0.0)]
    b.event("QueueMemberStatus", {**MEMBER, "Status": "6"}, 1.0)  # ringing: its device in use
    seen.append(agent.status(1.0))
    b.event("AgentConnect", {"Queue": "q", "Interface": "Local/100@agents"}, 2.0)
    b.event("QueueMemberStatus", {**MEMBER, "Status": "1", "InCall": "0"}, 2.1)  # the race
    seen.append(agent.status(3.0))
    b.event("AgentComplete", {"Queue": "q", "Interface": "Local/100@agents"}, 30.0)
    seen += [agent.status(35.0), agent.status(40.0)]
    b.event("QueueMemberPause", {**MEMBER, "Paused": "1"}, 41.0)
    seen.append(agent.status(41.0))
    assert seen == ["free", "busy", "busy", "wrapup", "free", "paused"]


def test_wrapup_fields_that_are_no_real_seconds_count_as_none() -> None:
    # 'inf' was taken: the agent was never free again after their next call.
    for bad in ("inf", "nan", "-5", "abc", "1e9"):
        b = AgentBoard("collections", 0)
        member = {"Queue": "collections", "Interface": "L/1", "Status": "1", "Wrapuptime": bad}
        b.event("QueueMemberStatus", member, 0.0)
        b.event("AgentConnect", {"Queue": "collections", "Interface": "L/1"}, 1.0)
        b.event("AgentComplete", {"Queue": "collections", "Interface": "L/1"}, 2.0)
        assert b.free(3.0) == 1, bad
