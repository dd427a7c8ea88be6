"""`gatewayctl teams` and `gatewayctl tenants`: the budget tree's nodes and their caps, on a stack or locally."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

from gatewayctl.admin_client import AdminClient
from gatewayctl.arguments import positive_decimal, positive_int
from gatewayctl.output import print_json, render_table
from gatewayctl.teams import NODE_HEADERS, node_row
from llm_gateway.domain.budget_tree import PERIODS, SCOPES


def _cap_options(parser: argparse.ArgumentParser) -> None:
    caps = parser.add_argument_group("caps (0 removes one)")
    for period in PERIODS:
        caps.add_argument(f"--tokens-per-{period}", type=_non_negative_int, help=f"tokens per calendar {period}")
        caps.add_argument(f"--usd-per-{period}", type=_non_negative_decimal, help=f"spend per calendar {period} in USD")
    parser.add_argument("--time-zone", help="IANA time zone of the node's days, weeks (from Monday) and months")


def _non_negative_int(value: str) -> int:
    return 0 if value.strip() == "0" else positive_int(value)


def _non_negative_decimal(value: str) -> Decimal:
    return Decimal(0) if value.strip() in {"0", "0.0"} else positive_decimal(value)


def _caps(args: argparse.Namespace, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin API's caps for the periods an option names: each whole (the API replaces a period's cap), keeping
    the current part not named; 0 removes a part (null)."""
    now = {cap["period"]: cap for cap in current}
    caps = []
    for period in PERIODS:
        tokens, usd = getattr(args, f"tokens_per_{period}"), getattr(args, f"usd_per_{period}")
        if tokens is None and usd is None:
            continue
        kept = now.get(period, {})
        tokens = kept.get("tokens") if tokens is None else tokens or None
        usd = kept.get("usd") if usd is None else (str(usd) if usd else None)
        caps.append({"period": period, "tokens": tokens, "usd": usd})
    return caps


def _node_body(args: argparse.Namespace, current: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"caps": _caps(args, current)}
    if args.time_zone:
        body["time_zone"] = args.time_zone
    return body


def add_team_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], target: argparse.ArgumentParser
) -> None:
    teams = commands.add_parser(
        "teams",
        help="create, list and update teams and their budget caps",
        description="Teams in the budget tree (tenant > team > key): each belongs to one tenant and may cap tokens "
        "and USD per calendar day, week and month in its own time zone.",
    )
    team_commands = teams.add_subparsers(dest="team_command", required=True, metavar="ACTION")
    create = team_commands.add_parser("create", parents=[target], help="create a team")
    create.add_argument("team", metavar="TEAM")
    create.add_argument("--tenant", required=True, help="the tenant the team belongs to")
    _cap_options(create)
    create.set_defaults(handler=_teams_create)
    listing = team_commands.add_parser("list", parents=[target], help="list teams")
    listing.add_argument("--tenant", help="only this tenant's teams")
    listing.set_defaults(handler=_teams_list, scope="team")
    update = team_commands.add_parser("update", parents=[target], help="change a team's caps or time zone")
    update.add_argument("team", metavar="TEAM")
    _cap_options(update)
    update.set_defaults(handler=_nodes_update, scope="team")

    tenants = commands.add_parser(
        "tenants", help="set and list tenants' budget caps", description="Tenants' caps in the budget tree."
    )
    tenant_commands = tenants.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    setting = tenant_commands.add_parser("set", parents=[target], help="set a tenant's caps or time zone")
    setting.add_argument("team", metavar="TENANT")
    _cap_options(setting)
    setting.set_defaults(handler=_nodes_update, scope="tenant")
    tenant_list = tenant_commands.add_parser("list", parents=[target], help="list tenants with caps")
    tenant_list.set_defaults(handler=_teams_list, scope="tenant", tenant=None)

    budgets = commands.add_parser(
        "budgets",
        help="what a tenant, team or key has spent and has left per window",
        description="Spent and remaining per capped window (day, week, month in the node's time zone), from the "
        "budget tree's counters; a key shows its own node, its team and its tenant.",
    )
    budget_commands = budgets.add_subparsers(dest="budget_command", required=True, metavar="ACTION")
    show = budget_commands.add_parser("show", parents=[target], help="one node's windows (a key: its whole chain)")
    show.add_argument("scope", choices=SCOPES, metavar="SCOPE", help="tenant, team or key")
    show.add_argument("node", metavar="ID", help="the tenant, team or key id")
    show.set_defaults(handler=_budgets_show)


BUDGET_HEADERS = ["SCOPE", "ID", "PERIOD", "RESETS AT", "TOKENS CAP", "SPENT", "LEFT", "USD CAP", "SPENT", "LEFT"]


def _budgets_show(args: argparse.Namespace, admin: AdminClient) -> int:
    if args.scope == "key":
        budgets = admin.call("GET", f"/keys/{args.node}/budget")["data"]
    else:
        budgets = [admin.call("GET", f"/budgets/{args.scope}/{args.node}")]
    if args.json:
        print_json(budgets)
        return 0
    rows = [
        [b["scope"], b["id"], w["period"], w["resets_at"], *w["tokens"].values(), *w["usd"].values()]
        for b in budgets
        for w in b["windows"]
    ]
    print(render_table(BUDGET_HEADERS, rows) if rows else f"No capped windows for {args.scope} {args.node}.")
    return 0


def _print_nodes(nodes: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(nodes)
    elif nodes:
        print(render_table(NODE_HEADERS, [node_row(node) for node in nodes]))
    else:
        print("No teams.")


def _teams_create(args: argparse.Namespace, admin: AdminClient) -> int:
    body = {"id": args.team, "tenant": args.tenant, "time_zone": args.time_zone or "UTC", **_node_body(args, [])}
    _print_nodes([admin.call("POST", "/teams", body)], args.json)
    return 0


def _teams_list(args: argparse.Namespace, admin: AdminClient) -> int:
    path = "/teams" if args.scope == "team" else "/tenants"
    _print_nodes(admin.call("GET", path, query={"tenant": args.tenant})["data"], args.json)
    return 0


def _nodes_update(args: argparse.Namespace, admin: AdminClient) -> int:
    if args.scope == "team":
        current = admin.call("GET", f"/teams/{args.team}")["caps"]
        _print_nodes([admin.call("PATCH", f"/teams/{args.team}", _node_body(args, current))], args.json)
        return 0
    tenants = admin.call("GET", "/tenants")["data"]
    current = next((node["caps"] for node in tenants if node["id"] == args.team), [])
    _print_nodes([admin.call("PUT", f"/tenants/{args.team}", _node_body(args, current))], args.json)
    return 0
