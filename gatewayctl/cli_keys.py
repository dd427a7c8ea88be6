"""`gatewayctl keys` and `gatewayctl usage` as calls of the admin API: each command one or two requests, then print."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from gatewayctl.admin_client import AdminClient
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
from llm_gateway.domain.usage_report import header

# A limit option's value that returns it to the plan's default.
PLAN_DEFAULT = "default"
LIMITS = ("tokens_per_minute", "tokens_per_day", "usd_per_month")
# `gatewayctl usage` without --group-by: a row per key and day, with the key's tenant and plan.
PER_KEY_AND_DAY = "day,tenant,key,plan"


def _limit(value: Any) -> Any:
    return None if value is None else str(value) if not isinstance(value, int) else value


def _print_issued(issued: dict[str, Any], as_json: bool, verb: str) -> None:
    record = issued["record"]
    if as_json:
        print_json({"key": issued["key"], **record_dict(record)})
        return
    print(f"{verb} key {record['key_id']} for tenant {record['tenant']} on plan {record['plan']}.")
    print(f"\n    {issued['key']}\n")
    print("This is the only time the key is shown: store it now. The gateway keeps only its SHA-256.")


def _print_record(key: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(record_dict(key))
    else:
        print_details(key)


def keys_create(args: argparse.Namespace, admin: AdminClient) -> int:
    limits = {name: _limit(getattr(args, name)) for name in LIMITS}
    body: dict[str, Any] = {"tenant": args.tenant, "plan": args.plan, "models": args.models, "team": args.team}
    if args.expires is not None:
        body["expires_at"] = args.expires.isoformat()
    if any(value is not None for value in limits.values()):
        body["limits"] = limits
    _print_issued(admin.call("POST", "/keys", body), args.json, "Created")
    return 0


def keys_list(args: argparse.Namespace, admin: AdminClient) -> int:
    filters = {"tenant": args.tenant, "team": args.team, "plan": args.plan, "status": args.status, "q": args.search}
    keys = admin.call("GET", "/keys", query=filters)["data"]
    # The API lists newest first; the table reads by tenant, then creation.
    keys.sort(key=lambda key: (key["tenant"], key["created_at"]))
    if args.json:
        print_json([record_dict(key) for key in keys])
    elif keys:
        print(render_table(KEY_COLUMNS, [key_row(key) for key in keys]))
    else:
        print("No keys" + (" matching the filters." if any(filters.values()) else "."))
    return 0


def keys_update(args: argparse.Namespace, admin: AdminClient) -> int:
    current = admin.call("GET", f"/keys/{args.key_id}")
    body: dict[str, Any] = {}
    if args.all_models:
        body["models"] = "*"
    elif args.models:
        body["models"] = list(args.models)
    given = {name: getattr(args, name) for name in LIMITS if getattr(args, name) is not None}
    if given:
        limits = dict(current["limits"])
        limits.update({name: None if value == PLAN_DEFAULT else _limit(value) for name, value in given.items()})
        body["limits"] = limits
    if args.team:
        body["team"] = args.team
    if args.plan:
        body["plan"] = args.plan
    if "expires" in args:
        body["expires_at"] = None if args.expires is None else args.expires.isoformat()
    if current["status"] not in {"active", "expired"}:
        # The API refuses it too; asked first, so that nothing at all is sent for a key that cannot change.
        print(f"error: Key {args.key_id} is {current['status']}; only active keys can be changed", file=sys.stderr)
        return 1
    _print_record(admin.call("PATCH", f"/keys/{args.key_id}", body), args.json)
    return 0


def keys_show(args: argparse.Namespace, admin: AdminClient) -> int:
    _print_record(admin.call("GET", f"/keys/{args.key_id}"), args.json)
    return 0


def keys_revoke(args: argparse.Namespace, admin: AdminClient) -> int:
    revoked = admin.call("POST", f"/keys/{args.key_id}/revoke")
    warning = revoked.pop("warning", None)
    if args.json:
        print_json({**record_dict(revoked), "warning": warning})
    else:
        print(f"Revoked key {args.key_id}; the gateway refuses it within the authorizer cache time.")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
        return 3
    return 0


def keys_rotate(args: argparse.Namespace, admin: AdminClient) -> int:
    rotated = admin.call("POST", f"/keys/{args.key_id}/rotate", {"grace_period_seconds": args.grace})
    previous = rotated.get("previous") or {}
    if args.json:
        print_json(
            {"key": rotated["key"], **record_dict(rotated["record"]), "previous_revoked_at": previous.get("revoked_at")}
        )
        return 0
    _print_issued(rotated, False, "Rotated")
    if args.grace:
        print(f"The old key {previous.get('key_hint')} keeps working until {previous.get('revoked_at')}.")
    return 0


# `gatewayctl keys requests`: the columns of a key's requests of a day.
REQUEST_COLUMNS = ("at", "model", "status", "prompt_tokens", "completion_tokens", "cost_usd", "session", "end_user")


def keys_requests(args: argparse.Namespace, admin: AdminClient) -> int:
    query = {"day": args.day.isoformat() if args.day else None}
    found = admin.call("GET", f"/keys/{args.key_id}/requests", query=query)
    if args.json:
        print_json(found)
        return 0
    rows = [
        [*(row[name] if row[name] is not None else "-" for name in REQUEST_COLUMNS), _tags(row["tags"])]
        for row in found["data"]
    ]
    print(render_table([name.upper() for name in (*REQUEST_COLUMNS, "tags")], rows))
    return 0


def _tags(tags: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in tags.items()) or "-"


def usage(args: argparse.Namespace, admin: AdminClient) -> int:
    since: date = args.since or datetime.now(UTC).date() - timedelta(days=30)
    query = {"since": since.isoformat(), "tenant": args.tenant, "key": args.key}
    if args.group_by:
        groups = ",".join(args.group_by)
        if args.csv:
            sys.stdout.write(admin.call("GET", "/usage", query={**query, "group_by": groups}, accept="text/csv"))
            return 0
        report = admin.call("GET", "/usage", query={**query, "group_by": groups})
        rows, columns = report["data"], header(report["group_by"])
        if args.json:
            print_json([{name: row[name] for name in columns} for row in rows])
        else:
            cells = [[*(row[name] for name in columns[:-1]), f"{Decimal(row['cost_usd']):.6f}"] for row in rows]
            print(render_table([name.upper() for name in columns], cells))
        return 0
    rows = [
        usage_dict(row) for row in admin.call("GET", "/usage", query={**query, "group_by": PER_KEY_AND_DAY})["data"]
    ]
    if args.json:
        print_json(rows)
    elif rows:
        print(render_table(USAGE_COLUMNS, [usage_row(row) for row in rows] + [usage_total(rows)]))
    else:
        print(f"No usage since {since.isoformat()}.")
    return 0
