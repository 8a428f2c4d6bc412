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
