"""The Asterisk side of ``puente bench ivr``: many scripted callers through the real flow.

Run as ``python -m bench._ivr_peer PORT SESSIONS SECONDS THINK_MS`` with the accounts (JSON:
``[[number, dialed, account], ...]``) on standard input. It is ``bench._peers``' FastAGI load
with a script per session: the ``inbound`` environment of one debtor, and the simulator's
scripted caller (:class:`pbx.sim._agi_caller.AgiResponder`) entering the account, the date of
birth and taking the pay-in-full promise. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import sys

from bench._peers import Answerer, Script, agi_load
from pbx.agi import encode_environment
from pbx.sim._agi_caller import AgiResponder


def _scripts(accounts: list[list[str]]) -> Script:
    rng = random.Random(20261126)

    def script(i: int) -> tuple[bytes, Answerer]:
        number, dialed, account = accounts[i % len(accounts)]
        responder = AgiResponder(keys=["", f"{account}#", "19800101#", "1", "2"])
        env = encode_environment(
            [
                ("agi_network", "yes"),
                ("agi_network_script", "inbound"),
                ("agi_request", "agi://127.0.0.1/inbound"),
                ("agi_channel", "PJSIP/trunk-00000001"),
                ("agi_language", "en"),
                ("agi_uniqueid", f"1795335161.{rng.randrange(10**6)}"),
                ("agi_version", "22.10.1"),
                ("agi_callerid", number),
                ("agi_dnid", dialed),
                ("agi_context", "puente-inbound"),
                ("agi_extension", dialed),
                ("agi_priority", "3"),
                ("agi_arg_1", dialed),
            ]
        )
        return env, lambda command: responder.respond(command).text.encode()

    return script


def main(argv: list[str]) -> int:
    gc.disable()  # the instrument's own pauses would read as Puente's latency
    port, sessions, seconds, think_ms = int(argv[0]), int(argv[1]), float(argv[2]), float(argv[3])
    accounts = json.loads(sys.stdin.read())
    stats = asyncio.run(
        agi_load(
            port,
            sessions,
            seconds,
            think_ms,
            script=_scripts(accounts),
            warmup_s=2.0,
            drain_s=20.0,
        )
    )
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
