"""``puente ivr validate`` and ``puente ivr prompts`` as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from ivr import Catalog


def _puente(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "puente", *args], capture_output=True, text=True, timeout=120
    )


def test_validate_the_shipped_flows_and_a_broken_one(tmp_path: Path) -> None:
    ok = _puente("ivr", "validate")
    assert ok.returncode == 0, ok.stderr
    assert "collections.yaml: ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "flow: bad\nentries: {inbound: a}\non_error: a\nstates:\n"
        "  a:\n    play: [welcome]\n    next: b\n  b:\n    on: 1\n    end: x\n"
    )
    out = _puente("ivr", "validate", str(bad))
    assert out.returncode == 1
    assert f"{bad}:9: " in out.stderr
    assert "'on' is a YAML 1.1 boolean" in out.stderr


@pytest.mark.skipif(
    subprocess.run(["which", "espeak-ng"], capture_output=True).returncode != 0,
    reason="espeak-ng is installed by ./dev",
)
def test_prompts_are_spoken_into_8k_wav_files(tmp_path: Path) -> None:
    out = _puente("ivr", "prompts", str(tmp_path), "--lang", "es")
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "puente" / "es").glob("*.wav"))
    assert {f.stem for f in files} == set(Catalog.load().texts)
    with wave.open(str(tmp_path / "puente" / "es" / "voicemail_limited.wav")) as w:
        assert w.getframerate() == 8000
        assert w.getnframes() > 4000  # half a second of speech at least


@pytest.mark.skipif(
    subprocess.run(["which", "espeak-ng"], capture_output=True).returncode != 0,
    reason="espeak-ng is installed by ./dev",
)
async def test_creditor_prompts_come_from_the_database(
    database_url: str, db_pool, tmp_path: Path
) -> None:
    # The voicemail message's business name and contact person, spoken per creditor.
    code = f"Cr{os.urandom(3).hex()}"
    await db_pool.execute(
        """INSERT INTO creditors (code, name, public_name, callback_number, contact_name)
           VALUES ($1, 'Cobranzas Norte SA', 'Norte', '+525500000000', 'Ana Ruiz')""",
        code,
    )
    env = {**os.environ, "PUENTE_DATABASE_URL": database_url}
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "puente", "ivr", "prompts", str(tmp_path), "--lang", "en",
         "--creditors"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for stem in (f"company_{code.lower()}", f"contact_{code.lower()}"):
        with wave.open(str(tmp_path / "puente" / "en" / f"{stem}.wav")) as w:
            assert w.getframerate() == 8000
            assert w.getnframes() > 2000


FLOW = "flow: NAME\nentries: {ENTRY: a}\non_error: a\nstates:\n  a:\n    end: done\n"


class _Run:
    """``puente ...`` in this process (the bad-argument paths stop before any I/O)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        from puente.cli import main

        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)


def test_validate_reports_every_file_and_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _puente = _Run(capsys)
    nointo = tmp_path / "nointo.yaml"
    nointo.write_text(
        "flow: nointo\nentries: {x: a}\non_error: b\nstates:\n"
        "  a:\n    collect: {max_digits: 2}\n    next: b\n  b:\n    end: bye\n"
    )
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xb5\x00flow")
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(FLOW.replace("NAME", "same").replace("ENTRY", "one"))
    second.write_text(FLOW.replace("NAME", "same").replace("ENTRY", "two"))
    out = _puente("ivr", "validate", str(nointo), str(binary), str(first), str(second))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"{nointo}:6: states.a.collect.into: a data name is required",
        f"{binary}: not UTF-8 text (byte 0xb5 at offset 0)",
        f"{second}:1: flow 'same' is also in {first}",
    ]


def test_prompts_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _puente = _Run(capsys)
    afile = tmp_path / "afile"
    afile.write_text("x")
    french = tmp_path / "fr.yaml"
    french.write_text("welcome:\n  fr: Bonjour\n")
    for args, message in [
        ((str(afile),), f"{afile / 'puente'}"),  # the output "directory" is a file
        ((str(tmp_path), "--prompts", str(french)), "prompt 'welcome': unknown language 'fr'"),
        ((str(tmp_path), "--prompts", str(tmp_path / "no.yaml")), "cannot read: No such file"),
        ((str(tmp_path), "--prompts", str(tmp_path)), "cannot read: Is a directory"),
    ]:
        out = _puente("ivr", "prompts", *args)
        assert (out.returncode, "Traceback" in out.stderr) == (2, False), out.stderr
        assert len(out.stderr.splitlines()) == 1
        assert out.stderr.startswith("puente ivr prompts: ")
        assert message in out.stderr


def test_simulate_refuses_bad_arguments_before_the_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _puente = _Run(capsys)
    # None of these reaches the database: each is refused first, with what was wrong.
    cases = [
        (("inbound", "--entry", "nosuchentry"), 2, "has no entry 'nosuchentry'"),
        (("inbound", "--attempt", "not-a-uuid"), 2, "argument --attempt: not a UUID"),
        (("inbound", "--keys", "12#,xyz#,!!,1"), 2, "--keys: entry 2 has 'xyz', not DTMF keys"),
        (("inbound", "--caller-id", "notanumber"), 2, "argument --caller-id: expected an E.164"),
        (("inbound", "--caller-id", "+525512345678\n"), 2, "--caller-id: expected an E.164"),
        (("one", "--flow-dir", str(tmp_path / "none")), 1, f"{tmp_path / 'none'}: no such dir"),
        (("one", "--flow-dir", str(tmp_path / ("x" * 300))), 1, "File name too long"),
    ]
    for args, code, message in cases:
        out = _puente("ivr", "simulate", *args)
        assert (out.returncode, "Traceback" in out.stderr) == (code, False), out.stderr
        assert message in out.stderr
    out = _puente("ivr", "simulate", "inbound", "--caller-id", "5512345678")
    assert "5512345678" not in out.stderr  # a mistyped number is not echoed
