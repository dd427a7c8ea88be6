"""`gatewayctl teams create/list/update`, `tenants set/list` and `keys create --team`, on a stack (moto) and on the
local gateway's embedded database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatewayctl import cli
from gatewayctl.deployment import Deployment
from llm_gateway.domain.budget_tree import BudgetNode, NodeCap
from tests.contract.conftest import Stack


@pytest.fixture(params=["dynamodb", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Deployment:
    if request.param == "sqlite":
        return Deployment("local gateway", "us-east-1", {}, data_dir=tmp_path)
    stack: Stack = request.getfixturevalue("stack")
    return Deployment("test stack", "us-east-1", stack.outputs)


def run(deployment: Deployment, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv), deployment_factory=lambda _: deployment)
    out, err = capsys.readouterr()
    return code, out, err


def test_teams_are_created_listed_and_updated(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        deployment, capsys, "teams", "create", "platform", "--tenant", "acme", "--time-zone", "Asia/Tokyo",
        "--tokens-per-day", "100000", "--usd-per-month", "250", "--json",
    )  # fmt: skip
    assert code == 0
    [team] = json.loads(out)
    assert team == {
        "scope": "team",
        "id": "platform",
        "parent": "acme",
        "time_zone": "Asia/Tokyo",
        "caps": [{"period": "day", "tokens": 100000, "usd": None}, {"period": "month", "tokens": None, "usd": "250"}],
    }
    code, _, err = run(deployment, capsys, "teams", "create", "platform", "--tenant", "acme")
    assert code == 1 and "exists" in err
    run(deployment, capsys, "teams", "create", "research", "--tenant", "beta")
    code, out, _ = run(deployment, capsys, "teams", "list", "--tenant", "acme")
    assert code == 0 and "platform" in out and "Asia/Tokyo" in out and "research" not in out
    # Lowered, one cap removed (0), a new one added.
    code, out, _ = run(
        deployment, capsys, "teams", "update", "platform", "--tokens-per-day", "0", "--tokens-per-week", "5000",
        "--usd-per-month", "10", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)[0]["caps"] == [
        {"period": "week", "tokens": 5000, "usd": None},
        {"period": "month", "tokens": None, "usd": "10"},
    ]
    code, _, err = run(deployment, capsys, "teams", "update", "nobody", "--tokens-per-day", "1")
    assert code == 1 and "No team 'nobody'" in err
    code, _, err = run(deployment, capsys, "teams", "update", "platform", "--time-zone", "Mars/Olympus")
    assert code == 1 and "Unknown IANA time zone" in err


def test_a_tenants_caps_are_set_and_listed(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(
        deployment, capsys, "tenants", "set", "acme", "--usd-per-week", "1000", "--time-zone", "Europe/Paris"
    )
    assert code == 0
    code, out, _ = run(deployment, capsys, "tenants", "list", "--json")
    assert json.loads(out) == [
        {
            "scope": "tenant",
            "id": "acme",
            "parent": None,
            "time_zone": "Europe/Paris",
            "caps": [{"period": "week", "tokens": None, "usd": "1000"}],
        }
    ]


def test_a_key_is_created_in_a_team_of_its_tenant(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = Deployment("test stack", "us-east-1", stack.outputs)
    run(deployment, capsys, "teams", "create", "platform", "--tenant", "acme")
    code, out, _ = run(
        deployment, capsys, "keys", "create", "--tenant", "acme", "--plan", "free", "--team", "platform", "--json"
    )
    assert code == 0 and json.loads(out)["key"].startswith("sk-llmgw-")
    key_id = json.loads(out)["key_id"]
    assert json.loads(out)["team"] == "platform"
    from llm_gateway.store.keys import KeyStore

    assert KeyStore(stack.dynamodb, stack.outputs["KeysTableName"]).get_by_id(key_id).team == "platform"
    run(deployment, capsys, "teams", "create", "research", "--tenant", "acme")
    run(deployment, capsys, "teams", "create", "elsewhere", "--tenant", "beta")
    code, out, _ = run(deployment, capsys, "keys", "update", key_id, "--team", "research", "--json")
    assert code == 0 and json.loads(out)["team"] == "research"
    code, _, err = run(deployment, capsys, "keys", "update", key_id, "--team", "elsewhere")
    assert code == 1 and "belongs to tenant 'beta'" in err
    code, _, err = run(deployment, capsys, "keys", "create", "--tenant", "beta", "--plan", "free", "--team", "platform")
    assert code == 1 and "belongs to tenant 'acme'" in err
    code, _, err = run(deployment, capsys, "keys", "create", "--tenant", "acme", "--plan", "free", "--team", "nope")
    assert code == 1 and "No team 'nope'" in err


def test_nodes_round_trip_through_the_admin() -> None:
    from llm_gateway.domain.team_admin import apply_caps

    caps = apply_caps((NodeCap("day", 10),), {("day", "tokens"): 0, ("month", "usd"): None})
    assert caps == ()
    assert BudgetNode("team", "x").caps == ()


def test_usage_is_grouped_by_team_as_csv(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from llm_gateway.domain.answers import Usage
    from llm_gateway.domain.registry import Prices
    from tests.contract.test_usage_cli import record

    deployment = Deployment("test stack", "us-east-1", stack.outputs)
    run(deployment, capsys, "teams", "create", "platform", "--tenant", "acme")
    keys = []
    for team in ("platform", "platform", None):
        argv = ["keys", "create", "--tenant", "acme", "--plan", "free", "--json"] + (["--team", team] if team else [])
        keys.append(json.loads(run(deployment, capsys, *argv)[1])["key_id"])
    at = datetime.now(UTC)
    for key_id in keys:
        record(stack, key_id, "acme", at, Usage(prompt_tokens=10, completion_tokens=5), Prices())
    code, out, err = run(deployment, capsys, "usage", "--group-by", "tenant,team", "--csv")
    assert code == 0, err
    assert out.splitlines() == [
        "tenant,team,requests,failed,prompt_tokens,cached_tokens,cache_write_tokens,completion_tokens,cost_usd",
        "acme,-,1,0,10,0,0,5,0.000000",
        "acme,platform,2,0,20,0,0,10,0.000000",
    ]
    with pytest.raises(SystemExit):
        cli.main(["usage", "--group-by", "colour"], deployment_factory=lambda _: deployment)
