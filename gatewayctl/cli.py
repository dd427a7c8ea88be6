"""gatewayctl command line: `gatewayctl --help` lists the commands, `gatewayctl COMMAND --help` their options."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gatewayctl import cli_keys
from gatewayctl.admin_client import AdminApiError, AdminClient, admin_client
from gatewayctl.arguments import (
    parse_expiry,
    parse_expiry_or_never,
    parse_grace,
    parse_models,
    positive_decimal,
    positive_int,
)
from gatewayctl.catalog import GROUPS as CATALOG_GROUPS
from gatewayctl.cli_keys import PLAN_DEFAULT
from gatewayctl.cli_offline import add_cost_parser, add_serve_parser, add_traits_parser, groups, models_import
from gatewayctl.cli_teams import add_team_parsers
from gatewayctl.deployment import Deployment, DeploymentError, from_local, from_stack, samconfig_defaults
from llm_gateway.domain.usage_report import parse_groups
from llm_gateway.errors import GatewayError

DEFAULT_LOCAL_URL = "http://127.0.0.1:3000"


def _target_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_argument_group("target (default: the stack of samconfig.toml's environment)")
    where.add_argument(
        "--local",
        nargs="?",
        const=DEFAULT_LOCAL_URL,
        metavar="URL",
        help=f"act on the local gateway (default URL {DEFAULT_LOCAL_URL})",
    )
    where.add_argument("--stack", help="CloudFormation stack name of a deployed gateway")
    where.add_argument("--env", default="default", help="samconfig.toml environment (default, dev, prod)")
    where.add_argument("--region", help="AWS region of the stack")
    parent.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parent


def _or_plan_default(parse: Callable[[str], object]) -> Callable[[str], object]:
    def parse_limit(value: str) -> object:
        return PLAN_DEFAULT if value == PLAN_DEFAULT else parse(value)

    return parse_limit


def _limit_options(parser: argparse.ArgumentParser, *, resettable: bool = False) -> None:
    suffix = "; 'default' returns to the plan's" if resettable else " (default: the plan's)"
    wrap = _or_plan_default if resettable else (lambda parse: parse)
    parser.add_argument("--tokens-per-minute", type=wrap(positive_int), help="token budget per minute" + suffix)
    parser.add_argument("--tokens-per-day", type=wrap(positive_int), help="token budget per UTC day" + suffix)
    parser.add_argument("--usd-per-month", type=wrap(positive_decimal), help="spend limit per month in USD" + suffix)


def _key_filters(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--team", help="only this team's keys")
    listing.add_argument("--plan", help="only keys on this plan")
    listing.add_argument(
        "--status", choices=["active", "retiring", "revoked", "expired"], help="only keys (secrets) in this state"
    )
    listing.add_argument("--search", metavar="TEXT", help="key id, hint, tenant or team containing TEXT")


def _update_options(update: argparse.ArgumentParser) -> None:
    update.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...)")
    models = update.add_mutually_exclusive_group()
    models.add_argument("--models", type=parse_models, help="comma-separated models the key may use")
    models.add_argument("--all-models", action="store_true", help="let the key use every model")
    update.add_argument("--team", help="move the key to another team of its tenant")
    update.add_argument("--plan", help="move the key to another usage plan (its throttle, quota and defaults)")
    update.add_argument(
        "--expires",
        type=parse_expiry_or_never,
        default=argparse.SUPPRESS,
        help="new expiry: ISO date/time (UTC), a duration from now like 30d, or 'never'",
    )
    _limit_options(update, resettable=True)


def _add_requests_parser(
    key_commands: argparse._SubParsersAction[argparse.ArgumentParser], target: argparse.ArgumentParser
) -> None:
    requests = key_commands.add_parser(
        "requests",
        parents=[target],
        help="a key's requests of one day",
        description="A key's requests of one UTC day, oldest first, from their usage events: model, status, tokens, "
        "cost, session, end user, tags.",
    )
    requests.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...)")
    requests.add_argument("--day", type=date.fromisoformat, help="the UTC day, YYYY-MM-DD (default: today)")
    requests.set_defaults(handler=cli_keys.keys_requests)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayctl", description="Operate an llm-gateway deployment.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_serve_parser(commands)

    target = _target_options()
    keys = commands.add_parser(
        "keys",
        help="create, list, show, revoke and rotate API keys",
        description="Manage API keys: each is an API Gateway key on a usage plan plus a "
        "record in the keys table holding only the key's SHA-256.",
    )
    key_commands = keys.add_subparsers(dest="key_command", required=True, metavar="ACTION")

    create = key_commands.add_parser(
        "create",
        parents=[target],
        help="issue a key (printed once)",
        description="Issue a new key on a plan. The key is printed once and never stored.",
    )
    create.add_argument("--tenant", required=True, help="tenant (team, customer) the key belongs to")
    create.add_argument("--plan", required=True, help="usage plan: free, standard or premium")
    create.add_argument("--models", type=parse_models, help="comma-separated models the key may use (default: all)")
    create.add_argument("--expires", type=parse_expiry, help="expiry: ISO date/time (UTC) or duration like 30d")
    create.add_argument("--team", help="the key's team in the budget tree (`gatewayctl teams create`)")
    _limit_options(create)
    create.set_defaults(handler=cli_keys.keys_create)

    listing = key_commands.add_parser(
        "list", parents=[target], help="list keys", description="List keys; every filter given applies."
    )
    _key_filters(listing)
    listing.set_defaults(handler=cli_keys.keys_list)

    _add_requests_parser(key_commands, target)

    update = key_commands.add_parser(
        "update",
        parents=[target],
        help="change a key's plan, expiry, models or token/spend limits",
        description="Change an active key's plan, expiry, allowed models or limits; the authorizer sees it within "
        "its cache time.",
    )
    _update_options(update)
    update.set_defaults(handler=cli_keys.keys_update)

    add_team_parsers(commands, target)

    usage = commands.add_parser(
        "usage",
        parents=[target],
        help="requests, tokens and cost per key and day, or grouped by any attribute",
        description="Requests, tokens and cost per key and UTC day, from the usage table; grouped by model, session, "
        "end user or tag, from the usage events.",
    )
    usage.add_argument("--tenant", help="only this tenant's keys")
    usage.add_argument("--key", metavar="KEY_ID", help="only this key")
    usage.add_argument("--since", type=parse_since, help="first day: YYYY-MM-DD or a duration like 7d (default: 30d)")
    usage.add_argument(
        "--group-by",
        type=_group_by,
        metavar="FIELDS",
        help="sum per day, tenant, team, key, plan, model, session, end_user, tag:NAME or tag (each allowed tag): "
        "team or team,model",
    )
    usage.add_argument("--csv", action="store_true", help="print CSV (with --group-by)")
    usage.set_defaults(handler=cli_keys.usage)

    registry = commands.add_parser(
        "models",
        help="maintain the model registry (development time)",
        description="Maintain the model registry shipped in the layer.",
    )
    model_commands = registry.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    seed = model_commands.add_parser(
        "import-litellm",
        help="compare or fill the registry's limits, capabilities and prices from litellm's model catalog",
        description="Compare the registry with litellm's model catalog (model_prices_and_context_window.json) "
        "and, with --write, fill in what the registry does not state (--overwrite: replace what it does). "
        "Every value written names the catalog entry as its source.",
    )
    seed.add_argument("--catalog", type=Path, metavar="FILE", help="the catalog JSON (default: installed litellm's)")
    seed.add_argument("--registry", type=Path, metavar="FILE", help="registry file (default: the shipped models.json)")
    seed.add_argument(
        "--fields",
        type=groups,
        default=list(CATALOG_GROUPS),
        metavar="GROUPS",
        help="comma-separated: limits (embedding limits included), capabilities, prices (default: all)",
    )
    seed.add_argument("--overwrite", action="store_true", help="replace values the registry already states")
    seed.add_argument("--write", action="store_true", help="write the result (default: only report differences)")
    seed.set_defaults(handler=models_import)
    add_traits_parser(model_commands)

    add_cost_parser(commands)

    for name, handler, summary in (
        ("show", cli_keys.keys_show, "show one key"),
        ("revoke", cli_keys.keys_revoke, "revoke a key (refused within the authorizer cache time, 30 s by default)"),
        (
            "rotate",
            cli_keys.keys_rotate,
            "issue a new secret for a key (same id, budgets and plan) and retire the old one, at once or after --grace",
        ),
    ):
        action = key_commands.add_parser(
            name, parents=[target], help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        action.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...)")
        action.set_defaults(handler=handler)
        if name == "rotate":
            action.add_argument(
                "--grace",
                type=parse_grace,
                default=0,
                metavar="DURATION",
                help="how long the old secret keeps working: 90s, 15m, 1h, 2d (default: refused at once)",
            )
    return parser


def deployment_of(args: argparse.Namespace) -> Deployment:
    if args.local:
        return from_local(args.local)
    stack, region = samconfig_defaults(args.env)
    stack = args.stack or stack
    if not stack:
        raise DeploymentError("No stack: pass --stack NAME, --env ENV (samconfig.toml) or --local")
    return from_stack(stack, args.region or region)


def parse_since(value: str, today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    match = re.fullmatch(r"(\d+)d", value.strip())
    if match:
        return today - timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is neither YYYY-MM-DD nor a number of days like 7d") from None


def _group_by(value: str) -> tuple[str, ...]:
    try:
        # `tag` (a column per allowed tag) is expanded by the admin API, which knows the deployment's tag names.
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        parse_groups(",".join(name for name in names if name != "tag") or "day")
        return names
    except GatewayError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(
    argv: Sequence[str] | None = None, deployment_factory: Callable[[argparse.Namespace], Deployment] | None = None
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        if args.command in {"keys", "usage", "teams", "tenants", "budgets"}:
            deployment = deployment_factory(args) if deployment_factory else deployment_of(args)
            client: AdminClient = admin_client(deployment)
            return int(args.handler(args, client))
        return int(args.handler(args))
    except (DeploymentError, GatewayError, AdminApiError) as error:
        print(f"error: {error}", file=sys.stderr)
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS refused or could not be reached: {error}", file=sys.stderr)
    except (ValidationError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
