"""Codex CLI compacts its session through the local gateway: a context window small enough that the second turn
must compact first, and a provider Codex trusts with remote compaction (it does so for a provider named "OpenAI"),
so it sends its whole history ending in a `compaction_trigger` item to POST /responses and continues from the one
compaction item it gets back. The compaction is metered like any request. Codex runs with its default web search
setting, which offers a hosted web search tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalGateway
from tests.e2e.test_local_responses import CODEX, codex_home, codex_runner, new_key

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI is not installed (make e2e installs it with npm)")
def test_codex_compacts_before_its_second_turn(local_gateway: LocalGateway, tmp_path: Path) -> None:
    issued = new_key(local_gateway)
    home = codex_home(tmp_path, local_gateway)
    config = (home / "config.toml").read_text().replace('name = "llm-gateway"', 'name = "OpenAI"')
    # Codex's default web search stays on: it offers OpenAI's hosted web search, which the gateway leaves out.
    config = config.replace('web_search = "disabled"\n', "")
    # Codex's instructions and tools alone are some 3,000 tokens: the first turn leaves more than 500 behind.
    (home / "config.toml").write_text("model_auto_compact_token_limit = 500\nmodel_context_window = 4000\n" + config)
    run = codex_runner(tmp_path, home, issued["key"], timeout=180)

    def codex(*arguments: str) -> str:
        ran = run(*arguments)
        assert "remote compaction" not in ran.stderr, ran.stderr[-3000:]
        assert ran.stdout.strip() == arguments[-1]  # echo's answer, after the compaction
        return ran.stderr

    assert "context compacted" not in codex("Say hello to the gateway")
    assert "context compacted" in codex("resume", "--last", "A second turn")
    report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
    assert report.returncode == 0, report.stderr
    (day,) = json.loads(report.stdout)
    # Two turns and the compaction between them, which read the whole first turn.
    assert day["requests"] == 3 and day["prompt_tokens"] > 3 * 2_000
