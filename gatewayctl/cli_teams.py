"""`gatewayctl teams` and `gatewayctl tenants`: the budget tree's nodes and their caps, on a stack or locally."""

from __future__ import annotations

import argparse
from decimal import Decimal

from gatewayctl.arguments import positive_decimal, positive_int
from gatewayctl.output import print_json, render_table
from gatewayctl.teams import NODE_HEADERS, CapChanges, TeamAdmin, node_dict, node_row
from llm_gateway.domain.budget_tree import PERIODS, BudgetNode


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


def _cap_changes(args: argparse.Namespace) -> CapChanges:
    changes: CapChanges = {}
    for period in PERIODS:
        changes[(period, "tokens")] = getattr(args, f"tokens_per_{period}")
        changes[(period, "usd")] = getattr(args, f"usd_per_{period}")
    return changes


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


def _print_nodes(nodes: list[BudgetNode], as_json: bool) -> None:
    if as_json:
        print_json([node_dict(node) for node in nodes])
    elif nodes:
        print(render_table(NODE_HEADERS, [node_row(node) for node in nodes]))
    else:
        print("No teams.")


def _teams_create(args: argparse.Namespace, admin: TeamAdmin) -> int:
    _print_nodes([admin.create_team(args.team, args.tenant, args.time_zone or "UTC", _cap_changes(args))], args.json)
    return 0


def _teams_list(args: argparse.Namespace, admin: TeamAdmin) -> int:
    _print_nodes(admin.list(args.scope, args.tenant), args.json)
    return 0


def _nodes_update(args: argparse.Namespace, admin: TeamAdmin) -> int:
    _print_nodes([admin.update(args.scope, args.team, args.time_zone, _cap_changes(args))], args.json)
    return 0
