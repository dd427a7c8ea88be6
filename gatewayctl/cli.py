"""gatewayctl command line: `gatewayctl --help` lists the commands, `gatewayctl COMMAND --help` their options."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from gatewayctl.catalog import GROUPS as CATALOG_GROUPS
from gatewayctl.deployment import Deployment, DeploymentError, from_local, from_stack, samconfig_defaults
from gatewayctl.keys import IssuedKey, KeyAdmin, KeyAdminError
from gatewayctl.output import (
    KEY_COLUMNS,
    USAGE_COLUMNS,
    key_row,
    print_details,
    print_json,
    record_dict,
    render_table,
    usage_dict,
    usage_row,
    usage_total,
)
from gatewayctl.teams import NODE_HEADERS, CapChanges, TeamAdmin, TeamAdminError, node_dict, node_row
from gatewayctl.usage_groups import as_csv, grouped, header, parse_groups, row_values
from llm_gateway.domain.budget_tree import PERIODS, BudgetNode
from llm_gateway.domain.keys import KeyRecord, TokenLimits
from llm_gateway.domain.stores import BudgetTree, DailyUsage, KeyRecords, KeyStoreError, UsageLedger
from llm_gateway.store.budget_tree import DynamoBudgetTree
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.sqlite.budget_tree import SqliteBudgetTree
from llm_gateway.store.sqlite.database import database
from llm_gateway.store.sqlite.keys import SqliteKeyStore
from llm_gateway.store.sqlite.usage import SqliteUsageStore
from llm_gateway.store.usage import UsageStore

DEFAULT_LOCAL_URL = "http://127.0.0.1:3000"
_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """An absolute ISO date/time (UTC unless it says otherwise) or a duration from now: 30d, 12h, 90m."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is neither an ISO date/time nor a duration like 30d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_models(value: str) -> list[str]:
    models = [name.strip() for name in value.split(",") if name.strip()]
    if not models:
        raise argparse.ArgumentTypeError("give at least one model name, or leave --models out for all models")
    return models


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"'{value}' is not a positive whole number")
    return int(value)


def positive_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"'{value}' must be positive")
    return number


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


PLAN_DEFAULT = "default"


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


def _add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the whole gateway on 127.0.0.1 (local mode)",
        description="Serve template.yaml on 127.0.0.1 as API Gateway would: routes, authorizer, API keys, usage "
        "plans and gateway responses, with key records, budgets and usage in an SQLite database in --data-dir "
        "with API Gateway's keys, plans and quotas beside it (kept across restarts). "
        "GATEWAY_DEMO_KEY=sk-llmgw-... fixes the demo key.",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "3000")),
        help="port on 127.0.0.1 (default: $PORT or 3000; 0 picks a free one)",
    )
    serve.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        type=_parameter,
        help="template parameters, as for sam deploy (e.g. StandardPlanBurstLimit=5)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ["GATEWAY_DATA_DIR"]) if os.environ.get("GATEWAY_DATA_DIR") else None,
        metavar="DIR",
        help="where the local gateway keeps its state (default: $GATEWAY_DATA_DIR or .gateway-data/ in the checkout)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="worker processes serving requests (default: 2, or 1 on a one-core machine; 1 with --dynamodb-endpoint)",
    )
    serve.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="keep keys and usage in this DynamoDB-compatible endpoint (e.g. DynamoDB Local) instead of --data-dir",
    )
    serve.add_argument(
        "--models",
        type=Path,
        metavar="FILE",
        help="extra models: a registry file like layers/gateway/llm_gateway/models.json (see docs/models.md)",
    )
    serve.add_argument("--metrics", action="store_true", help="print the functions' EMF metrics to stdout")
    serve.add_argument("--quiet", action="store_true", help="no access log on stderr")
    serve.set_defaults(handler=_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayctl", description="Operate an llm-gateway deployment.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_serve_parser(commands)

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
    create.set_defaults(handler=_keys_create)

    listing = key_commands.add_parser(
        "list", parents=[target], help="list keys", description="List keys, optionally of one tenant."
    )
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.set_defaults(handler=_keys_list)

    update = key_commands.add_parser(
        "update",
        parents=[target],
        help="change a key's models or token/spend limits",
        description="Change an active key's allowed models or limits; the authorizer sees it within its cache time.",
    )
    update.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...)")
    models = update.add_mutually_exclusive_group()
    models.add_argument("--models", type=parse_models, help="comma-separated models the key may use")
    models.add_argument("--all-models", action="store_true", help="let the key use every model")
    update.add_argument("--team", help="move the key to another team of its tenant")
    _limit_options(update, resettable=True)
    update.set_defaults(handler=_keys_update)

    _add_team_parsers(commands, target)

    usage = commands.add_parser(
        "usage",
        parents=[target],
        help="requests, tokens and cost per key and day",
        description="Requests, tokens and cost per key and UTC day, from the usage table.",
    )
    usage.add_argument("--tenant", help="only this tenant's keys")
    usage.add_argument("--key", metavar="KEY_ID", help="only this key")
    usage.add_argument("--since", type=parse_since, help="first day: YYYY-MM-DD or a duration like 7d (default: 30d)")
    usage.add_argument(
        "--group-by", type=_group_by, metavar="FIELDS", help="sum per day, tenant, team and/or key: team or tenant,team"
    )
    usage.add_argument("--csv", action="store_true", help="print CSV (with --group-by)")
    usage.set_defaults(handler=_usage)

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
        type=_groups,
        default=list(CATALOG_GROUPS),
        metavar="GROUPS",
        help="comma-separated: limits (embedding limits included), capabilities, prices (default: all)",
    )
    seed.add_argument("--overwrite", action="store_true", help="replace values the registry already states")
    seed.add_argument("--write", action="store_true", help="write the result (default: only report differences)")
    seed.set_defaults(handler=_models_import)
    _add_traits_parser(model_commands)

    _add_cost_parser(commands)

    for name, handler, summary in (
        ("show", _keys_show, "show one key"),
        ("revoke", _keys_revoke, "revoke a key (refused within the authorizer cache time, 30 s by default)"),
        ("rotate", _keys_rotate, "issue a new secret for a key (same id, budgets and plan) and revoke the old one"),
    ):
        action = key_commands.add_parser(
            name, parents=[target], help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        action.add_argument("key_id", metavar="KEY_ID", help="the key's id (key_...)")
        action.set_defaults(handler=handler)
    return parser


def _add_cost_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cost = commands.add_parser(
        "cost",
        help="monthly AWS cost of the stack for a workload, next to LiteLLM on Fargate (offline)",
        description="The monthly AWS cost of this stack (API Gateway, both Lambda functions, DynamoDB, CloudWatch, "
        "data transfer) for a workload, next to a LiteLLM proxy on two Fargate tasks behind an ALB, from the list "
        "prices in gatewayctl/prices.json. Model tokens are not included: both pay the same provider.",
    )
    cost.add_argument("--requests", type=_count, default=10_000_000, help="chat requests a month: 1M, 2.5M... (10M)")
    cost.add_argument("--latency", type=float, default=5.0, help="seconds a request waits for its model (5)")
    cost.add_argument("--prompt-tokens", type=int, default=1000, help="prompt tokens a request (1000)")
    cost.add_argument("--completion-tokens", type=int, default=500, help="completion tokens a request (500)")
    cost.add_argument("--stream-share", type=float, default=0.5, help="share of requests streamed, 0-1 (0.5)")
    cost.add_argument("--memory", type=int, default=256, help="API function memory in MB (ApiMemorySize, 256)")
    cost.add_argument("--fargate-arm", action="store_true", help="price LiteLLM's tasks on ARM instead of x86")
    cost.add_argument("--table", action="store_true", help="the docs/cost.md table (1M/10M/100M at 5 s and 20 s)")
    cost.set_defaults(handler=_cost)


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


def _add_team_parsers(
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


def deployment_of(args: argparse.Namespace) -> Deployment:
    if args.local:
        return from_local(args.local)
    stack, region = samconfig_defaults(args.env)
    stack = args.stack or stack
    if not stack:
        raise DeploymentError("No stack: pass --stack NAME, --env ENV (samconfig.toml) or --local")
    return from_stack(stack, args.region or region)


def key_records(deployment: Deployment) -> KeyRecords:
    """The deployment's key records: its keys table, or the local gateway's embedded database."""
    if deployment.data_dir is not None:
        return SqliteKeyStore(database(deployment.data_dir))
    return KeyStore(deployment.client("dynamodb"), deployment.output("KeysTableName"))


def usage_ledger(deployment: Deployment) -> UsageLedger:
    if deployment.data_dir is not None:
        return SqliteUsageStore(database(deployment.data_dir))
    return UsageStore(deployment.client("dynamodb"), deployment.output("UsageTableName"))


def budget_tree(deployment: Deployment) -> BudgetTree:
    """The deployment's budget tree: its usage table, or the local gateway's embedded database."""
    if deployment.data_dir is not None:
        return SqliteBudgetTree(database(deployment.data_dir))
    return DynamoBudgetTree(deployment.client("dynamodb"), deployment.output("UsageTableName"))


def key_admin(deployment: Deployment) -> KeyAdmin:
    return KeyAdmin(
        key_records(deployment), deployment.client("apigateway"), deployment.plans, tree=budget_tree(deployment)
    )


def parse_since(value: str, today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    match = re.fullmatch(r"(\d+)d", value.strip())
    if match:
        return today - timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is neither YYYY-MM-DD nor a number of days like 7d") from None


def _print_issued(issued: IssuedKey, as_json: bool, verb: str) -> None:
    if as_json:
        print_json({"key": issued.key, **record_dict(issued.record)})
        return
    print(f"{verb} key {issued.record.key_id} for tenant {issued.record.tenant} on plan {issued.record.plan}.")
    print(f"\n    {issued.key}\n")
    print("This is the only time the key is shown: store it now. The gateway keeps only its SHA-256.")


def _keys_create(args: argparse.Namespace, admin: KeyAdmin) -> int:
    limits = TokenLimits(args.tokens_per_minute, args.tokens_per_day, args.usd_per_month)
    issued = admin.create(args.tenant, args.plan, args.models, expires_at=args.expires, limits=limits, team=args.team)
    _print_issued(issued, args.json, "Created")
    return 0


def _keys_list(args: argparse.Namespace, admin: KeyAdmin) -> int:
    records = admin.list(args.tenant)
    if args.json:
        print_json([record_dict(record) for record in records])
    elif records:
        print(render_table(KEY_COLUMNS, [key_row(record) for record in records]))
    else:
        print("No keys" + (f" for tenant {args.tenant}." if args.tenant else "."))
    return 0


def _keys_update(args: argparse.Namespace, admin: KeyAdmin) -> int:
    current = admin.show(args.key_id)
    models = current.models
    if args.all_models:
        models = None
    elif args.models:
        models = tuple(args.models)
    changes = {
        field: None if value == PLAN_DEFAULT else value
        for field, value in (
            ("tokens_per_minute", args.tokens_per_minute),
            ("tokens_per_day", args.tokens_per_day),
            ("usd_per_month", args.usd_per_month),
        )
        if value is not None
    }
    if args.team:
        admin.move(args.key_id, args.team)
    _print_record(admin.update(args.key_id, models, replace(current.limits, **changes)), args.json)
    return 0


def _print_record(record: KeyRecord, as_json: bool) -> None:
    if as_json:
        print_json(record_dict(record))
    else:
        print_details(record)


def _usage(args: argparse.Namespace, deployment: Deployment) -> int:
    store = usage_ledger(deployment)
    since = args.since or datetime.now(UTC).date() - timedelta(days=30)
    rows = store.daily_usage(key_id=args.key, tenant=args.tenant, since=since)
    if args.group_by:
        return _usage_groups(args, deployment, rows)
    if args.json:
        print_json([usage_dict(row) for row in rows])
    elif rows:
        print(render_table(USAGE_COLUMNS, [usage_row(row) for row in rows] + [usage_total(rows)]))
    else:
        print(f"No usage since {since.isoformat()}.")
    return 0


def _group_by(value: str) -> tuple[str, ...]:
    try:
        return parse_groups(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _usage_groups(args: argparse.Namespace, deployment: Deployment, rows: list[DailyUsage]) -> int:
    """Usage summed per group; a key's team comes from its record."""
    teams = {record.key_id: record.team for record in key_records(deployment).list()} if "team" in args.group_by else {}
    found = grouped(rows, args.group_by, teams)
    if args.csv:
        sys.stdout.write(as_csv(args.group_by, found))
    elif args.json:
        print_json([dict(zip(header(args.group_by), row_values(group), strict=True)) for group in found])
    else:
        print(render_table([name.upper() for name in header(args.group_by)], [row_values(g) for g in found]))
    return 0


def _keys_show(args: argparse.Namespace, admin: KeyAdmin) -> int:
    _print_record(admin.show(args.key_id), args.json)
    return 0


def _keys_revoke(args: argparse.Namespace, admin: KeyAdmin) -> int:
    revocation = admin.revoke(args.key_id)
    if args.json:
        print_json({**record_dict(revocation.record), "warning": revocation.warning})
    else:
        print(f"Revoked key {args.key_id}; the gateway refuses it within the authorizer cache time.")
    if revocation.warning:
        print(f"warning: {revocation.warning}", file=sys.stderr)
        return 3
    return 0


def _keys_rotate(args: argparse.Namespace, admin: KeyAdmin) -> int:
    issued = admin.rotate(args.key_id)
    _print_issued(issued, args.json, "Rotated")
    return 0


def _groups(value: str) -> list[str]:
    groups = [group.strip() for group in value.split(",") if group.strip()]
    unknown = sorted(set(groups) - set(CATALOG_GROUPS))
    if unknown or not groups:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(CATALOG_GROUPS)} (got {value!r})")
    return groups


def _models_import(args: argparse.Namespace) -> int:
    import json

    from gatewayctl.catalog import import_catalog, load_catalog, report
    from llm_gateway.domain.registry import ModelRegistry

    catalog, label = load_catalog(args.catalog)
    path: Path = args.registry or Path(str(resources.files("llm_gateway").joinpath("models.json")))
    registry = json.loads(path.read_text(encoding="utf-8"))
    updated, changes = import_catalog(registry, catalog, label, groups=args.fields, overwrite=args.overwrite)
    print(report(changes, written=args.write))
    if args.write:
        ModelRegistry.model_validate(updated)  # never write a registry the gateway would refuse to load
        path.write_text(json.dumps(updated, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"Wrote {path}.")
    return 0


def _add_traits_parser(model_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    traits = model_commands.add_parser(
        "traits",
        help="show each model's traits in force and where each came from (its entry or the shipped catalog)",
        description="Resolve a registry as the gateway does: an entry's traits are the shipped catalog's for its "
        "targets' provider models (the stricter where targets disagree), overridden field by field by its own.",
    )
    traits.add_argument("names", nargs="*", metavar="MODEL", help="only these models (default: all)")
    traits.add_argument(
        "--registry",
        type=Path,
        metavar="FILE",
        help="registry file (default: GATEWAY_MODELS_JSON or GATEWAY_MODELS_FILE, else the shipped models.json)",
    )
    traits.add_argument("--json", action="store_true", help="print JSON")
    traits.set_defaults(handler=_models_traits)


def _models_traits(args: argparse.Namespace) -> int:
    import json

    from gatewayctl.traits import trait_rows, trait_table
    from llm_gateway.config import Settings, shipped_catalog, shipped_registry_text
    from llm_gateway.domain.registry import ModelRegistry
    from llm_gateway.errors import ConfigurationError, ModelNotFoundError

    try:
        if args.registry is not None:
            text = args.registry.read_text(encoding="utf-8")
        else:
            settings = Settings.from_environ()
            text = settings.models_json or (
                settings.models_file.read_text(encoding="utf-8") if settings.models_file else shipped_registry_text()
            )
        rows = trait_rows(ModelRegistry.model_validate(json.loads(text)), shipped_catalog(), args.names or None)
    except (OSError, ValueError, ConfigurationError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print_json(rows)
    else:
        print(trait_table(rows))
    return 0


def _count(value: str) -> int:
    from gatewayctl.cost_report import parse_count

    try:
        return parse_count(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a count such as 1000, 10k, 2.5M") from None


def _cost(args: argparse.Namespace) -> int:
    from gatewayctl.cost import Prices, Workload
    from gatewayctl.cost_report import markdown_table, report

    workload = Workload(
        requests=args.requests,
        latency_seconds=args.latency,
        prompt_tokens=args.prompt_tokens,
        completion_tokens=args.completion_tokens,
        stream_share=args.stream_share,
        memory_mb=args.memory,
        fargate_arm=args.fargate_arm,
    )
    prices = Prices.load()
    print(markdown_table(workload, prices) if args.table else report(workload, prices), end="\n")
    return 0


def _parameter(value: str) -> tuple[str, str]:
    name, separator, setting = value.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"'{value}' is not NAME=VALUE")
    return name, setting


def _serve(args: argparse.Namespace) -> int:
    try:
        from gatewayctl.local.serve import ServeOptions, serve
    except ModuleNotFoundError as missing:
        print(
            f"gatewayctl serve needs the local gateway's packages ({missing.name} is missing): "
            "pip install 'llm-gateway[local]', or run `make install`.",
            file=sys.stderr,
        )
        return 2

    return serve(
        ServeOptions(
            port=args.port,
            parameter_overrides=dict(args.parameter_overrides),
            dynamodb_endpoint=args.dynamodb_endpoint,
            data_dir=args.data_dir,
            workers=max(1, args.workers),
            demo_key=os.environ.get("GATEWAY_DEMO_KEY") or None,
            metrics=args.metrics,
            quiet=args.quiet,
            models_file=args.models,
        )
    )


def main(
    argv: Sequence[str] | None = None, deployment_factory: Callable[[argparse.Namespace], Deployment] | None = None
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        if args.command in {"keys", "usage", "teams", "tenants"}:
            deployment = deployment_factory(args) if deployment_factory else deployment_of(args)
            if args.command in {"teams", "tenants"}:
                return int(args.handler(args, TeamAdmin(budget_tree(deployment))))
            if args.command == "usage":
                return int(args.handler(args, deployment))
            return int(args.handler(args, key_admin(deployment)))
        return int(args.handler(args))
    except (DeploymentError, KeyAdminError, KeyStoreError, TeamAdminError) as error:
        print(f"error: {error}", file=sys.stderr)
    except (BotoCoreError, ClientError) as error:
        print(f"error: AWS refused or could not be reached: {error}", file=sys.stderr)
    except (ValidationError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
