"""The Node clients of the end-to-end tests: the npm packages `make e2e` installs into .cache/node-clients (pinned by
tests/e2e/js/package.json and its lock file) and the driver scripts beside this file (js/) that use them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, LocalGateway, child_environment

NODE_CLIENTS = ROOT / ".cache" / "node-clients"
DRIVERS = Path(__file__).resolve().parent / "js"


def installed(package: str) -> bool:
    return shutil.which("node") is not None and (NODE_CLIENTS / "node_modules" / package / "package.json").is_file()


def needs(*packages: str) -> pytest.MarkDecorator:
    """Skips a test whose Node packages are missing: only where npm is absent does `make e2e` install none."""
    missing = [package for package in packages if not installed(package)]
    return pytest.mark.skipif(
        bool(missing), reason=f"{', '.join(missing)} not installed (make e2e installs the Node clients with npm)"
    )


def client_environment(gateway: LocalGateway, key: str | None = None) -> dict[str, str]:
    """The environment a user of the SDKs sets: the gateway as OpenAI's base URL (with /v1) and as Anthropic's
    (the host alone), the key for both; the Agents SDK's tracing off (it would upload traces to OpenAI)."""
    environment = child_environment()
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "ANTHROPIC_AUTH_TOKEN"):
        environment.pop(name, None)
    return {
        **environment,
        "OPENAI_BASE_URL": gateway.base_url,
        "OPENAI_API_KEY": key or gateway.key,
        "ANTHROPIC_BASE_URL": gateway.root_url,
        "ANTHROPIC_API_KEY": key or gateway.key,
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }


def driver_command(script: str) -> list[str]:
    """node running js/<script> as an ES module from .cache/node-clients: code given with --eval resolves its
    imports from the working directory, where npm put the packages."""
    return ["node", "--no-warnings", "--input-type=module", "--eval", (DRIVERS / script).read_text()]


def run_driver(script: str, environment: Mapping[str, str], timeout: float = 120) -> dict[str, Any]:
    """What the driver saw: the JSON object it prints last."""
    ran = subprocess.run(
        driver_command(script),
        cwd=NODE_CLIENTS,
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert ran.returncode == 0, f"{script} failed:\n{ran.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    return result
