"""The Responses API of `make run`'s gateway as its real clients use it: the official openai SDK's
`client.responses` (create, stream, tools across turns, typed errors) and Codex CLI itself (`codex exec`, two
turns, with the gateway as a custom model provider)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import ROOT, LocalGateway, child_environment

pytestmark = pytest.mark.e2e

CODEX = ROOT / ".cache" / "codex" / "node_modules" / ".bin" / "codex"
LOOKUP = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def sdk(gateway: LocalGateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key or gateway.key, max_retries=0)


def new_key(gateway: LocalGateway) -> dict[str, Any]:
    created = gateway.gatewayctl("keys", "create", "--tenant", "responses-e2e", "--plan", "premium", "--json")
    assert created.returncode == 0, created.stderr
    issued: dict[str, Any] = json.loads(created.stdout)
    return issued


def test_create_and_stream_over_http(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    response = client.responses.create(model="echo", input="Hello, gateway", store=False)
    assert response.output_text == "Hello, gateway" and response.status == "completed"
    with client.responses.stream(model="echo", input="one two three", store=False) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["one", " two", " three"] and final.output_text == "one two three"


def test_a_tool_call_and_its_output_over_two_turns(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    first = client.responses.create(
        model="echo",
        input="word",
        tools=[LOOKUP],
        tool_choice="required",
        store=False,  # type: ignore[list-item]
    )
    call = first.output[-1]
    assert call.type == "function_call"
    history: list[Any] = [{"role": "user", "content": "word"}, call.model_dump(exclude_none=True)]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "a unit of language"})
    second = client.responses.create(model="echo", input=history, tools=[LOOKUP], store=False)  # type: ignore[list-item]
    assert second.output_text == "a unit of language"


def test_state_the_gateway_does_not_keep_is_refused_in_openais_terms(local_gateway: LocalGateway) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(local_gateway).responses.create(model="echo", input="and then?", previous_response_id="resp_1")
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "previous_response_not_found"


def codex_home(tmp_path: Path, gateway: LocalGateway) -> Path:
    """A Codex home of its own: the gateway as the model provider (Responses API, key from an environment
    variable), no retries, and no hosted web search (the gateway runs no hosted tools)."""
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        "\n".join(
            [
                'model = "echo"',
                'model_provider = "gateway"',
                'web_search = "disabled"',
                'approval_policy = "never"',
                'sandbox_mode = "read-only"',
                "",
                "[model_providers.gateway]",
                'name = "llm-gateway"',
                f'base_url = "{gateway.base_url}"',
                'env_key = "LLM_GATEWAY_KEY"',
                'wire_api = "responses"',
                "request_max_retries = 0",
                "stream_max_retries = 0",
                "",
            ]
        )
    )
    return home


def codex_runner(
    tmp_path: Path, home: Path, key: str, *, timeout: int
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`codex exec` in a fresh working directory under `tmp_path`, with `home` as CODEX_HOME and `key` as the
    gateway key its provider reads; the runner asserts that Codex exited 0."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    environment = {**child_environment(), "HOME": str(tmp_path), "CODEX_HOME": str(home), "LLM_GATEWAY_KEY": key}
    environment.pop("OPENAI_API_KEY", None)

    def codex(*arguments: str) -> subprocess.CompletedProcess[str]:
        ran = subprocess.run(
            [str(CODEX), "exec", "--skip-git-repo-check", *arguments],
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        return ran

    return codex


@pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI is not installed (make e2e installs it with npm)")
def test_codex_runs_two_turns_headless_against_the_gateway(local_gateway: LocalGateway, tmp_path: Path) -> None:
    issued = new_key(local_gateway)
    run = codex_runner(tmp_path, codex_home(tmp_path, local_gateway), issued["key"], timeout=120)

    def codex(*arguments: str) -> str:
        return run(*arguments).stdout.strip()

    assert codex("Say hello to the gateway") == "Say hello to the gateway"
    assert codex("resume", "--last", "A second turn") == "A second turn"
    report = local_gateway.gatewayctl("usage", "--key", issued["key_id"], "--json")
    assert report.returncode == 0, report.stderr
    (day,) = json.loads(report.stdout)
    assert day["requests"] == 2 and day["prompt_tokens"] > 1000, "Codex's instructions and tools are metered"
