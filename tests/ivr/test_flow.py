"""Flow files: strict loading with file and line, and the pure flow machine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr import ACTIONS, Catalog, FlowError, FlowMachine, load_flows, parse_flow
from ivr._machine import Collect, Day, Digits, File, Finish, Number, Play, RunAction, Transfer

CATALOG = Catalog.load()


def _flow(body: str, *, path: str = "t.yaml"):
    return parse_flow(textwrap.dedent(body), path, CATALOG, ACTIONS)


MINI = """
flow: mini
languages: [es, en]
entries: {inbound: ask}
agent: to_agent
on_error: apology
states:
  ask:
    play: [enter_account]
    collect: {into: account, min_digits: 4, max_digits: 8, retries: 1, invalid: invalid_entry}
    keys: {"9": english}
    next: find
    fail: to_agent
  english:
    action: set_language
    args: {language: en}
    results: {ok: ask}
  find:
    action: find_account
    args: {account: $account}
    results: {ok: done, locked: locked}
  done:
    play: [your_balance, {money: balance_cents}, due_on, {date: due}]
    end: ok
  locked:
    play: [locked]
    end: locked
  to_agent:
    play: [transferring]
    transfer: agent
  apology:
    play: [apology]
    transfer: agent
"""


def test_the_shipped_flows_load() -> None:
    flows = load_flows(None, CATALOG, ACTIONS)
    entries = {e for f in flows.values() for e in f.entries}
    assert {"inbound", "abandon-save", "reminder"} <= entries


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("next: find", "next: nowhere"),
            "t.yaml:12: state 'ask': goes to undefined state 'nowhere'",
        ),
        (("action: find_account", "action: find_acount"), "undefined action 'find_acount'"),
        (("[locked]", "[locked, no_such_prompt]"), "undefined prompt 'no_such_prompt'"),
        (
            ("results: {ok: done, locked: locked}", "results: {ok: done}"),
            "result 'locked' of find_account unhandled",
        ),
        (
            (
                "results: {ok: done, locked: locked}",
                "results: {ok: done, locked: locked, maybe: done}",
            ),
            "find_account has no result 'maybe'",
        ),
        (
            (
                "  locked:\n    play: [locked]\n    end: locked\n",
                "  locked:\n    play: [locked]\n    next: locked\n",
            ),
            "state 'locked': dead end",
        ),
        (
            ("  to_agent:\n", "  spare:\n    end: x\n  to_agent:\n"),
            "state 'spare': unreachable from every entry",
        ),
        (
            ('keys: {"9": english}', 'keys: {"123456789": english}'),
            "key '123456789' cannot be entered here",
        ),
        (
            ("collect: {into: account,", "collect: {into: account, colour: red,"),
            "unknown key 'colour'",
        ),
        # ($ in a Python pattern also matches before a final newline)
        (
            ("entries: {inbound: ask}", 'entries: {"inbound\\n": ask}'),
            "entries: 'inbound\\n' is not a valid script name",
        ),
        (("collect: {into: account,", 'collect: {into: "account\\n",'), "a data name is required"),
        # (an end's outcome goes to a channel variable: a newline or a space failed the call)
        (("    end: ok\n", '    end: "ok\\n"\n'), "end needs an outcome name"),
        (("    end: ok\n", '    end: "all ok"\n'), "end needs an outcome name"),
        (("    end: ok\n", "    end: ok\n    next: ask\n"), None),
    ],
)
def test_validation_names_the_line_and_the_problem(
    edit: tuple[str, str], message: str | None
) -> None:
    body = MINI.replace(*edit)
    assert body != MINI
    if message is None:  # end with a stray next: end wins, next is unused but valid
        _flow(body)
        return
    with pytest.raises(FlowError) as e:
        _flow(body)
    assert message in str(e.value)
    assert str(e.value).startswith("t.yaml:")


def test_yaml_traps_are_refused_with_their_line() -> None:
    with pytest.raises(FlowError, match=r"t.yaml:9: .*'yes' is a YAML 1.1 boolean"):
        _flow(MINI.replace("  ask:\n", "  ask:\n    yes: 1\n", 1))
    with pytest.raises(FlowError, match=r"duplicate key 'ask'"):
        _flow(MINI + "  ask:\n    end: x\n")


def test_a_missing_translation_is_refused(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("hello:\n  es: Hola\n")
    catalog = Catalog.load(prompts)
    body = """
    flow: x
    languages: [es, en]
    entries: {inbound: a}
    on_error: a
    states:
      a:
        play: [hello]
        end: done
    """
    with pytest.raises(FlowError, match="prompt 'hello' has no 'en' translation"):
        parse_flow(textwrap.dedent(body), "x.yaml", catalog, ACTIONS)
    ok = parse_flow(textwrap.dedent(body).replace("[es, en]", "[es]"), "x.yaml", catalog, ACTIONS)
    assert ok.languages == ("es",)


def _machine(language: str = "es", **data: object) -> FlowMachine:
    return FlowMachine(_flow(MINI), CATALOG, entry="inbound", language=language, data=data)


def test_collect_then_action_then_speech_in_the_call_language() -> None:
    m = _machine()
    step = m.start()
    assert isinstance(step, Collect)
    assert step.speech == (File(("puente/es/enter_account",)),)
    step = m.collected("12345")
    assert step == RunAction("find_account", {"account": "12345"}, "find")
    step = m.action_done("ok", {"balance_cents": 123405, "currency": "MXN", "due": "2026-12-01"})
    assert isinstance(step, Play)
    assert step.speech[1:6] == (
        Number(1234),
        File(("puente/es/currency_mxn",)),
        File(("puente/es/and",)),
        Number(5),
        File(("puente/es/cents",)),
    )
    assert isinstance(step.speech[-1], Day)
    assert m.played() == Finish("ok")
    assert m.outcome == "ok"
    assert [t["state"] for t in m.trail] == ["ask", "find", "done"]


def test_language_switch_and_retries_then_fail() -> None:
    m = _machine()
    m.start()
    step = m.collected("9")
    assert isinstance(step, Collect)
    assert m.language == "en"
    assert step.speech == (File(("puente/en/enter_account",)),)
    step = m.collected("12")  # too short: the invalid prompt, then the question again
    assert isinstance(step, Collect)
    assert step.speech[0] == File(("puente/en/invalid_entry", "invalid"))
    step = m.collected("")  # second failure with retries=1: the fail state
    assert step == Play((File(("puente/en/transferring",)),))
    assert m.played() == Transfer("agent")


def test_the_agent_key_works_from_any_collect() -> None:
    m = _machine()
    m.start()
    assert m.collected("0") == Play((File(("puente/es/transferring",)),))


def test_an_action_error_or_a_missing_value_goes_to_on_error() -> None:
    m = _machine()
    m.start()
    m.collected("12345")
    assert m.action_done("error") == Play((File(("puente/es/apology",)),))
    m = _machine()
    m.start()
    m.collected("12345")
    step = m.action_done("ok", {})  # no balance to speak: never silence, the apology
    assert step == Play((File(("puente/es/apology",)),))
    assert any("no value for 'balance_cents'" in t["event"] for t in m.trail)


def test_secret_digits_stay_out_of_data_and_trail() -> None:
    flows = load_flows(None, CATALOG, ACTIONS)
    flow = flows["collections"]
    m = FlowMachine(flow, CATALOG, entry="collections", language="es")
    m.state = flow.states["card_number"]
    step = m.collected("4242424242424242")
    assert isinstance(step, Collect)
    assert m.secrets == {"card": "4242424242424242"}
    assert "4242424242424242" not in repr(m.data) + repr(m.trail)
    m.collected("0130")
    m.collected("123")
    assert set(m.secrets) == {"card", "expiry", "cvv"}
    m.clear_secrets()
    assert m.secrets == {}


def test_a_flow_that_loops_without_the_caller_is_stopped() -> None:
    body = MINI.replace("{ok: done, locked: locked}", "{ok: find, locked: done}").replace(
        '{"9": english}', '{"9": english, "8": locked}'
    )
    m = FlowMachine(_flow(body), CATALOG, entry="inbound", language="es")
    m.start()
    step = m.collected("12345")
    for _ in range(1000):
        if isinstance(step, Finish):
            break
        step = m.action_done("ok")
    assert step == Finish("loop")


def test_digits_speech_and_say_items() -> None:
    body = MINI.replace("{date: due}", "{date: due}, {digits: code}")
    m = FlowMachine(_flow(body), CATALOG, entry="inbound", language="en")
    m.start()
    m.collected("12345")
    step = m.action_done("ok", {"balance_cents": 100, "due": "2026-12-01", "code": "12345678"})
    assert isinstance(step, Play)
    assert step.speech[-1] == Digits("12345678")
    assert step.speech[1:3] == (Number(1), File(("puente/en/currency_usd",)))


# -- bad input: reported with file and line, never an assertion or a silent default ------------
TINY = """
flow: tiny
entries: {inbound: a}
on_error: bye
states:
  a:
    STATE
  bye:
    end: done
"""


def _tiny(state: str, **top: str) -> str:
    body = TINY.replace("STATE", state.replace("\n", "\n    "))
    for key, value in top.items():
        body = body.replace(f"{key}: ", f"{key}: {value} #", 1)
    return body


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("collect: {max_digits: 2}\nnext: bye", "t.yaml:7: states.a.collect.into: a data name"),
        ("collect: 5\nnext: bye", "t.yaml:7: states.a.collect: expected a mapping"),
        ("collect: {into: 9}\nnext: bye", "states.a.collect.into: a data name is required"),
        ("end: 3", "t.yaml:7: state 'a': end needs an outcome name, got 3"),
        ('end: ""', "state 'a': end needs an outcome name, got ''"),
        ("next: [bye]", "state 'a': next expects a state name, got ['bye']"),
        ("collect: {into: x}\nnext: bye\nfail: 5", "state 'a': fail expects a state name, got 5"),
        ("action: 5\nresults: {ok: bye}", "state 'a': action needs an action name, got 5"),
        ("switch: [x]\ncases: {'1': bye}\ndefault: bye", "switch needs a data name, got ['x']"),
        ("switch: x\ncases: {'1': bye}\ndefault: 7", "state 'a': default expects a state name"),
        ("collect: {into: x, invalid: 3}\nnext: bye", "states.a.collect.invalid: expected a"),
        ("action: set\nargs: {x: [1, 2]}\nresults: {ok: bye}", "args.x: expected a text or a"),
        ("action: set\nargs: {y: {a: b}}\nresults: {ok: bye}", "args.y: expected a text or a"),
        ("action: set\nargs: {z: null}\nresults: {ok: bye}", "args.z: expected a text or a"),
    ],
)
def test_values_of_the_wrong_type_are_reported(state: str, message: str) -> None:
    with pytest.raises(FlowError) as e:
        _flow(_tiny(state))
    assert message in str(e.value)
    assert "collect needs keys or next" not in str(e.value)  # no misleading consequence


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ({"flow": '"hello world"\nagent_key: "hello world"'}, "agent_key: one key (0-9"),
        ({"flow": "x\nagent_key: [1, 2]"}, "agent_key: one key (0-9, * or #), got [1, 2]"),
        ({"flow": "x\nagent_key: 10"}, "agent_key: one key (0-9, * or #), got 10"),
        ({"flow": "x\nlanguages: [es, es]"}, "languages: 'es' is listed more than once"),
        ({"flow": "[1, 2]"}, "t.yaml:2: flow: expected a flow name, got [1, 2]"),
        ({"on_error": "5"}, "t.yaml:4: on_error: expected a state name, got 5"),
        ({"flow": "x\nagent: [bye]"}, "agent: expected a state name, got ['bye']"),
    ],
)
def test_top_level_values_of_the_wrong_type_are_reported(top: dict, message: str) -> None:
    with pytest.raises(FlowError) as e:
        _flow(_tiny("end: ok", **top))
    assert message in str(e.value)
    assert "undefined state ''" not in str(e.value)


def test_the_good_values_still_load() -> None:
    flow = _flow(
        _tiny("action: set\nargs: {n: 3, s: $x}\nresults: {ok: bye}", flow="x\nagent_key: 9")
    )
    assert (flow.name, flow.agent_key) == ("x", "9")
    assert flow.states["a"].args == {"n": "3", "s": "$x"}


def test_a_flow_dir_with_two_flows_of_one_name_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_tiny("end: ok").replace("tiny", "same"))
    (tmp_path / "b.yaml").write_text(
        _tiny("end: ok").replace("tiny", "same").replace("inbound", "other")
    )
    with pytest.raises(FlowError) as e:
        load_flows(tmp_path, CATALOG, ACTIONS)
    assert str(e.value) == f"{tmp_path / 'b.yaml'}:1: flow 'same' is also in {tmp_path / 'a.yaml'}"


def test_a_missing_flow_dir_or_a_file_is_said_so(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="no such directory"):
        load_flows(tmp_path / "nope", CATALOG, ACTIONS)
    (tmp_path / "f").write_text("")
    with pytest.raises(FlowError, match="is not a directory"):
        load_flows(tmp_path / "f", CATALOG, ACTIONS)


def test_files_that_are_not_utf8_are_reported_and_the_others_still_load(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(b"\xb5flow: x\n")
    (tmp_path / "b.yaml").write_text(_tiny("end: ok"))
    with pytest.raises(FlowError) as e:
        load_flows(tmp_path, CATALOG, ACTIONS)
    assert str(e.value) == f"{tmp_path / 'a.yaml'}: not UTF-8 text (byte 0xb5 at offset 0)"
    prompts = tmp_path / "prompts.yaml"
    prompts.write_bytes("hello:\n  es: Olá\n".encode("latin-1"))
    with pytest.raises(FlowError, match=r"prompts.yaml: not UTF-8 text \(byte 0xe1 at offset"):
        Catalog.load(prompts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello:\n  es: null\n", "prompt 'hello': es: expected a text, got None"),
        ("hello:\n  es: [a]\n", "prompt 'hello': es: expected a text, got ['a']"),
        (
            "hello:\n  es: Hola\n  fallback: {a: b}\n",
            "prompt 'hello': fallback: expected sound file names",
        ),
        ('hello:\n  es: ""\n', "prompt 'hello': es: expected a text, got ''"),
        ("hello:\n  fr: Salut\n", "prompt 'hello': unknown language 'fr'"),
    ],
)
def test_catalog_values_of_the_wrong_type_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(text)
    with pytest.raises(FlowError) as e:
        Catalog.load(prompts)
    assert str(e.value) == f"{prompts}: {message}"
