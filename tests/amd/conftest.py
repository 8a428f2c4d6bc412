"""A small corpus, generated once per test session (espeak-ng and sox are needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialer.amd import DEV_SEEDS, generate_corpus

#: A development seed: tests check behaviour, they do not report figures.
CORPUS_SEED = 17
assert CORPUS_SEED in DEV_SEEDS


def tools_missing() -> list[str]:
    return [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]


needs_tools = pytest.mark.skipif(
    bool(tools_missing()),
    reason=f"{' and '.join(tools_missing())} not installed (./dev setup installs them)",
)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if tools_missing():
        pytest.skip(f"{' and '.join(tools_missing())} not installed (./dev setup installs them)")
    out = tmp_path_factory.mktemp("amd-corpus")
    generate_corpus(out, seed=CORPUS_SEED, count=45, jobs=2)
    return out
