"""The Asterisk side of a FastAGI session in the simulator: a scripted caller and the answers.

``AgiResponder.respond(command)`` returns what Asterisk 22.10.1 answers to each command (the
recorded forms of ``agi/01-full-session``) and how long the command takes, given a scripted
caller: a list of key entries consumed by GET DATA / WAIT FOR DIGIT (and by STREAM FILE when an
entry starts with ``!``, meaning the caller barges in). Pure: time is returned, not waited.

Script entries: ``"1234#"`` digits ended by ``#``; ``"1234"`` digits then the timeout;
``""`` nothing (timeout); ``"!5"`` press 5 during the next prompt; ``"H"`` hang up at this
point. When the script runs out the caller hangs up.

The responder's ``variables`` is the channel's own variable table (a real channel has one): the
simulator hands it the channel's dict, so ``SET VARIABLE`` / ``EXEC Set`` are seen by the
dialplan after ``AGI()`` returns, and AMI ``Setvar`` by ``GET VARIABLE``. Each answer that
assigns a variable says so (:attr:`AgiAnswer.assigned`) so that the adapter can emit the
``VarSet`` event Asterisk emits. ``builtins`` are the read-only values ``GET VARIABLE`` also
finds (globals, ``CHANNEL``, ``UNIQUEID``, ``CALLERID(num)`` ...).

:func:`agi_environment` builds the ``agi_*`` block Asterisk sends first (recorded key order,
then ``agi_arg_1..N``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pbx.sim._dialplan import substitute

USAGE_520 = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    "Send the given file, allowing playback to be interrupted by the given digits, if any. "
    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
    "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error or "
    "if the channel was disconnected. If musiconhold is playing before calling stream file it "
    "will be automatically stopped and will not be restarted after completion.\n"
    "It sets the following channel variables upon completion:\n"
    "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
    "    <value>SUCCESS</value>\n"
    "    <value>FAILED</value>\n"
    "520 End of proper usage.\n"
)
DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"
# Commands that still work on a dead channel (everything else that touches media gets 511).
_DEAD_OK = {
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "SET VARIABLE",
    "NOOP",
    "EXEC",
    "VERBOSE",
    "DATABASE",
}
_KNOWN = (
    "ANSWER",
    "CHANNEL STATUS",
    "SET VARIABLE",
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "VERBOSE",
    "STREAM FILE",
    "CONTROL STREAM FILE",
    "SAY DIGITS",
    "SAY NUMBER",
    "SAY ALPHA",
    "SAY DATE",
    "SAY TIME",
    "SAY DATETIME",
    "GET DATA",
    "WAIT FOR DIGIT",
    "EXEC",
    "DATABASE PUT",
    "DATABASE GET",
    "NOOP",
    "HANGUP",
    "SET MUSIC",
)


def agi_environment(
    url: str,
    args: Sequence[str],
    *,
    channel: str,
    language: str,
    uniqueid: str,
    callerid: str,
    calleridname: str,
    dnid: str,
    context: str,
    extension: str,
    priority: int,
    threadid: int,
) -> list[tuple[str, str]]:
    """The ``agi_*`` block for ``AGI(url,args...)``, keys in the order Asterisk 22 sends them."""
    script = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    env = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", url),
        ("agi_channel", channel),
        ("agi_language", language),
        ("agi_type", channel.split("/", 1)[0]),
        ("agi_uniqueid", uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", callerid),
        ("agi_calleridname", calleridname),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", dnid),
        ("agi_rdnis", "unknown"),
        ("agi_context", context),
        ("agi_extension", extension),
        ("agi_priority", str(priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(threadid)),
    ]
    env += [(f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1)]
    return env


@dataclass
class AgiAnswer:
    text: str  # the response line(s), LF-terminated
    duration_s: float  # how long the command takes on the channel
    hangup_after: bool = False  # the caller hangs up when this command ends
    assigned: tuple[str, str] | None = None  # (name, value) this command set on the channel


@dataclass
class AgiResponder:
    keys: list[str]
    variables: dict[str, str] = field(default_factory=dict)  # the channel's table (see above)
    builtins: Mapping[str, str] = field(default_factory=dict)  # read-only: globals, CHANNEL...
    prompt_s: float = 1.5  # how long a STREAM FILE / SAY / GET DATA prompt plays
    key_s: float = 0.3  # time per key pressed
    known_apps: frozenset[str] = frozenset(
        {"Playback", "Set", "Background", "Wait", "Dial", "Queue", "SayNumber"}
    )
    # Sound files this PBX does not have: STREAM FILE answers "200 result=-1 endpos=0" and
    # GET DATA "200 result=-1" (agi/01), the channel staying up.
    missing_sounds: frozenset[str] = frozenset()
    dead: bool = False
    answered: bool = False
    _database: dict[tuple[str, str], str] = field(default_factory=dict)

    def _next_entry(self) -> str | None:
        if not self.keys:
            return None
        return self.keys.pop(0)

    def respond(self, command: str) -> AgiAnswer:
        verb = _verb(command)
        if verb is None:
            return AgiAnswer("510 Invalid or unknown command\n", 0.0)
        if self.dead and verb not in _DEAD_OK and not verb.startswith("DATABASE"):
            return AgiAnswer(DEAD, 0.0)
        try:
            args = shlex.split(command[len(verb) :])
        except ValueError:
            args = command[len(verb) :].split()
        handler = getattr(self, "_" + verb.lower().replace(" ", "_"), None)
        if handler is None:
            return AgiAnswer("200 result=0\n", 0.0)
        return handler(args)

    # -- commands ----------------------------------------------------------------------------
    def _answer(self, args: list[str]) -> AgiAnswer:
        self.answered = True
        return AgiAnswer("200 result=0\n", 0.0)

    def _channel_status(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=6\n", 0.0)

    def _set_variable(self, args: list[str]) -> AgiAnswer:
        if len(args) < 2:
            return AgiAnswer(USAGE_520, 0.0)
        self.variables[args[0]] = args[1]
        return AgiAnswer("200 result=1\n", 0.0, assigned=(args[0], args[1]))

    def _get_variable(self, args: list[str]) -> AgiAnswer:
        if not args:
            return AgiAnswer(USAGE_520, 0.0)
        value = self.variables.get(args[0], self.builtins.get(args[0]))
        if value is not None:
            return AgiAnswer(f"200 result=1 ({value})\n", 0.0)
        return AgiAnswer("200 result=0\n", 0.0)

    def _get_full_variable(self, args: list[str]) -> AgiAnswer:
        if not args:
            return AgiAnswer(USAGE_520, 0.0)
        scope = {**self.builtins, **self.variables}
        return AgiAnswer(f"200 result=1 ({substitute(args[0], scope)})\n", 0.0)

    def _verbose(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=1\n", 0.0)

    def _noop(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=0\n", 0.0)

    def _stream_file(self, args: list[str]) -> AgiAnswer:
        if not args:
            return AgiAnswer(USAGE_520, 0.0)
        escape = args[1] if len(args) > 1 else ""
        endpos = int(self.prompt_s * 8000)
        if args[0] in self.missing_sounds:
            return AgiAnswer("200 result=-1 endpos=0\n", 0.0)
        if self.keys and self.keys[0].startswith("!") and len(self.keys[0]) > 1:
            digit = self.keys[0][1]
            if digit in escape:  # a key the prompt does not take waits for a later one
                self.keys.pop(0)
                return AgiAnswer(
                    f"200 result={ord(digit)} endpos={endpos // 2}\n", self.prompt_s / 2
                )
        if self.keys and self.keys[0] == "H":  # mid-prompt: endpos is what played (agi/04)
            self.keys.pop(0)
            return AgiAnswer(
                f"200 result=-1 endpos={max(1, endpos // 2)}\n",
                self.prompt_s / 2,
                hangup_after=True,
            )
        return AgiAnswer(f"200 result=0 endpos={endpos}\n", self.prompt_s)

    _control_stream_file = _stream_file

    def _say(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=0\n", self.prompt_s)

    _say_digits = _say_number = _say_alpha = _say_date = _say_time = _say_datetime = _say

    def _get_data(self, args: list[str]) -> AgiAnswer:
        if not args:
            return AgiAnswer(USAGE_520, 0.0)
        timeout_s = int(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 5.0
        max_digits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        prompt = args[0]
        if prompt in self.missing_sounds:
            # ast_app_getdata_full returns ast_streamfile's -1 before reading a key; res_agi
            # prints it as a hang-up's "200 result=-1", but the channel is still up.
            return AgiAnswer("200 result=-1\n", 0.0)
        prompt_s = self.prompt_s if prompt else 0.0  # "": no prompt, straight to the keys
        entry = self._next_entry()
        if entry is None or entry == "H":
            return AgiAnswer("200 result=-1\n", prompt_s / 2, hangup_after=True)
        entry = entry.lstrip("!")
        if "#" in entry:  # '#' ends the entry (keys after it are never read)
            digits = entry[: entry.index("#")][:max_digits]
            return AgiAnswer(f"200 result={digits}\n", prompt_s + self.key_s * len(entry))
        digits = entry[:max_digits]
        if len(digits) >= max_digits and digits:
            return AgiAnswer(f"200 result={digits}\n", prompt_s + self.key_s * len(digits))
        took = prompt_s + self.key_s * len(digits) + timeout_s
        return AgiAnswer(f"200 result={digits} (timeout)\n", took)

    def _wait_for_digit(self, args: list[str]) -> AgiAnswer:
        timeout_s = int(args[0]) / 1000 if args and args[0].lstrip("-").isdigit() else 5.0
        entry = self._next_entry()
        if entry is None or entry == "H":
            return AgiAnswer("200 result=-1\n", 0.1, hangup_after=True)
        entry = entry.lstrip("!")
        if not entry:
            return AgiAnswer("200 result=0\n", max(timeout_s, 0.0))
        if len(entry) > 1:
            self.keys.insert(0, entry[1:])
        return AgiAnswer(f"200 result={ord(entry[0])}\n", self.key_s)

    def _exec(self, args: list[str]) -> AgiAnswer:
        if not args:
            return AgiAnswer(USAGE_520, 0.0)
        app = args[0]
        if app.lower() not in {a.lower() for a in self.known_apps}:  # app names ignore case
            return AgiAnswer("200 result=-2\n", 0.0)
        if app.lower() == "set" and len(args) > 1 and "=" in args[1]:
            k, _, v = args[1].partition("=")
            self.variables[k] = v
            return AgiAnswer("200 result=0\n", 0.0, assigned=(k, v))
        return AgiAnswer("200 result=0\n", self.prompt_s if app.lower() == "playback" else 0.0)

    def _database_put(self, args: list[str]) -> AgiAnswer:
        if len(args) < 3:
            return AgiAnswer(USAGE_520, 0.0)
        self._database[(args[0], args[1])] = args[2]
        return AgiAnswer("200 result=1\n", 0.0)

    def _database_get(self, args: list[str]) -> AgiAnswer:
        value = self._database.get((args[0], args[1])) if len(args) >= 2 else None
        return AgiAnswer(
            f"200 result=1 ({value})\n" if value is not None else "200 result=0\n", 0.0
        )

    def _hangup(self, args: list[str]) -> AgiAnswer:
        self.dead = True
        return AgiAnswer("200 result=1\n", 0.0)

    def _set_music(self, args: list[str]) -> AgiAnswer:
        return AgiAnswer("200 result=0\n", 0.0)


def _verb(command: str) -> str | None:
    upper = command.strip().upper()
    for verb in sorted(_KNOWN, key=len, reverse=True):
        if upper == verb or upper.startswith(verb + " "):
            return verb
    return None
