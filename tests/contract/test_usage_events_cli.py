"""`gatewayctl usage --group-by` over the usage events (model, session, end user, tags), as a table, JSON and CSV, on
a stack (moto) and on the local gateway's embedded database; and `GET /admin/usage` refusing what it cannot group by."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gatewayctl import cli
from gatewayctl.admin_client import AdminApiError, admin_client
from gatewayctl.deployment import Deployment
from gatewayctl.stores import usage_events
from llm_gateway.domain.stores import UsageEvent
from tests.contract.conftest import Stack


@pytest.fixture(params=["dynamodb", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    if request.param == "sqlite":
        from emulator.control import LocalApiGatewayControl

        plan = LocalApiGatewayControl(tmp_path).create_usage_plan(name="free")
        return Deployment("local gateway", "us-east-1", {"FreeUsagePlanId": plan["id"]}, data_dir=tmp_path)
    stack: Stack = request.getfixturevalue("stack")
    return Deployment("test stack", "us-east-1", stack.outputs)


def run(deployment: Deployment, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv), deployment_factory=lambda _: deployment)
    out, err = capsys.readouterr()
    return code, out, err


def test_usage_grouped_by_model_and_session(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    run(deployment, capsys, "teams", "create", "platform", "--tenant", "acme")
    code, out, err = run(deployment, capsys, "keys", "create", "--tenant", "acme", "--plan", "free", "--team",
                       "platform", "--json")  # fmt: skip
    assert code == 0, err
    key_id = json.loads(out)["key_id"]
    store = usage_events(deployment)
    assert store is not None
    now = datetime.now(UTC)
    for i, (model, session, user) in enumerate([("echo", "s1", "u1"), ("echo", "s1", None), ("claude", None, "u2")]):
        store.record(
            UsageEvent(f"req-{i}", now - timedelta(seconds=i), key_id, "acme", "standard", model, 200, team="platform",
                       prompt_tokens=10, completion_tokens=5, cost_micro_usd=1500, session_id=session, end_user=user,
                       tags=(("project", "alpha"),))
        )  # fmt: skip

    code, out, _ = run(deployment, capsys, "usage", "--group-by", "model,session", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["model"], r["session"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("claude", "-", "1", "0.001500"),
        ("echo", "s1", "2", "0.003000"),
    ]
    code, out, _ = run(deployment, capsys, "usage", "--group-by", "team,model")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TEAM", "MODEL", "REQUESTS"]
    assert [line.split()[:3] for line in lines[1:] if line.strip() and not set(line) <= {"-", " "}] == [
        ["platform", "claude", "1"],
        ["platform", "echo", "2"],
    ]
    code, out, _ = run(deployment, capsys, "usage", "--group-by", "end_user,tag:project", "--json")
    assert code == 0
    assert [(r["end_user"], r["tag:project"], r["requests"]) for r in json.loads(out)] == [
        ("-", "alpha", 1), ("u1", "alpha", 1), ("u2", "alpha", 1),
    ]  # fmt: skip
    # The key's requests of today, oldest first.
    requests = admin_client(deployment).call("GET", f"/keys/{key_id}/requests")
    assert requests["key_id"] == key_id
    assert [(r["request_id"], r["model"], r["session"], r["tags"], r["cost_usd"]) for r in requests["data"]][-1] == (
        "req-0", "echo", "s1", {"project": "alpha"}, "0.0015",
    )  # fmt: skip
    code, out, _ = run(deployment, capsys, "keys", "requests", key_id, "--day", now.date().isoformat())
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["AT", "MODEL", "STATUS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_USD", "SESSION",
                                "END_USER", "TAGS"]  # fmt: skip
    assert lines[-1].split()[1:] == ["echo", "200", "10", "5", "0.0015", "s1", "u1", "project=alpha"]
    code, out, _ = run(deployment, capsys, "keys", "requests", key_id, "--json")
    assert code == 0 and json.loads(out)["data"][-1]["request_id"] == "req-0"
    with pytest.raises(AdminApiError) as unknown:
        admin_client(deployment).call("GET", "/keys/key_nope/requests")
    assert unknown.value.status == 404
    with pytest.raises(SystemExit):
        run(deployment, capsys, "usage", "--group-by", "colour")
    assert "not colour" in capsys.readouterr().err
