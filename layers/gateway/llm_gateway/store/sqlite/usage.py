"""The usage ledger (domain/stores.py UsageLedger) in the embedded database: budget windows and usage per day.

A key's windows are rows of `budget_windows` named so that they sort by time (`minute:2026-11-221504`,
`day:2026-11-22`, `usd:2026-11`, `quota_2026-11-22`); a reservation reads the ones it touches and writes them in one
IMMEDIATE transaction, so the check and the update are one atomic step across threads and processes, as a
conditional UpdateItem is. A settlement adds the real usage to the day's row of `daily_usage` in the same
transaction that corrects the windows, and prunes windows no request can still count in: there is nothing to roll
up, and reports read `daily_usage` directly.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from llm_gateway.domain.budget import QUOTA_PREFIX, Caps, Reservation, Settlement, Windows, WindowTotals
from llm_gateway.domain.stores import USAGE_FIELDS, DailyUsage, Refused, Reserved
from llm_gateway.store.sqlite.database import Database

_INT_FIELDS = tuple(name for name in USAGE_FIELDS if name != "cost_usd")


def _names(windows: Windows) -> tuple[str, str, str]:
    """(minute, day, month's USD) window names."""
    return f"minute:{windows.month}-{windows.minute}", f"day:{windows.month}-{windows.day}", f"usd:{windows.month}"


def _window_amounts(connection: sqlite3.Connection, key_id: str, names: list[str]) -> dict[str, int | str]:
    marks = ", ".join("?" * len(names))
    rows = connection.execute(
        f"SELECT window, amount FROM budget_windows WHERE key_id = ? AND window IN ({marks})",  # noqa: S608 # nosec B608 # placeholders only
        (key_id, *names),
    )
    return dict(rows.fetchall())


def _put(connection: sqlite3.Connection, key_id: str, amounts: dict[str, int | str]) -> None:
    connection.executemany(
        "INSERT INTO budget_windows (key_id, window, amount) VALUES (?, ?, ?) "
        "ON CONFLICT (key_id, window) DO UPDATE SET amount = excluded.amount",
        [(key_id, name, amount) for name, amount in amounts.items()],
    )


def check_windows(
    connection: sqlite3.Connection, reservation: Reservation, caps: Caps
) -> Refused | dict[str, int | str]:
    """The key's windows as they would be with the reservation in (nothing written yet), or their refusal."""
    minute, day, usd = _names(reservation.windows)
    quota = reservation.quota_counter
    names = [minute, day, usd] + ([quota] if quota else [])
    found = _window_amounts(connection, reservation.key_id, names)
    minute_tokens, day_tokens = int(found.get(minute, 0)), int(found.get(day, 0))
    month_usd = Decimal(str(found.get(usd, 0)))
    requests = int(found.get(quota, 0)) if quota else None
    # As the DynamoDB condition: a window is over its cap only once it exists.
    if (
        (caps.minute is not None and minute in found and minute_tokens > caps.minute)
        or (caps.day is not None and day in found and day_tokens > caps.day)
        or (caps.usd is not None and usd in found and month_usd > caps.usd)
    ):
        return Refused(
            {"minute": minute_tokens, "day": day_tokens, "month": month_usd},
            WindowTotals(minute_tokens, day_tokens, requests),
        )
    amounts: dict[str, int | str] = {
        minute: minute_tokens + reservation.tokens,
        day: day_tokens + reservation.tokens,
        usd: str(month_usd + reservation.usd),
    }
    if quota:
        amounts[quota] = (requests or 0) + 1
    return amounts


def write_windows(connection: sqlite3.Connection, reservation: Reservation, amounts: dict[str, int | str]) -> Reserved:
    """Write what `check_windows` found the windows to be with the reservation in."""
    minute, day, _ = _names(reservation.windows)
    quota = reservation.quota_counter
    _put(connection, reservation.key_id, amounts)
    return Reserved((), WindowTotals(int(amounts[minute]), int(amounts[day]), int(amounts[quota]) if quota else None))


def settle_windows(connection: sqlite3.Connection, settlement: Settlement) -> None:
    """Replace the reservation by the real usage, count the request in its day, prune past windows."""
    reservation = settlement.reservation
    windows = reservation.windows
    minute, day, usd = _names(windows)
    usage = settlement.usage
    figures: dict[str, int] = dict.fromkeys(_INT_FIELDS, 0)
    figures["failed" if settlement.failed else "requests"] = 1
    if usage is not None:
        figures.update(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            estimated=int(usage.estimated),
        )
    cost = settlement.cost if usage is not None else Decimal(0)
    made = reservation.made_at.astimezone(UTC)
    keep_minute = _names(Windows.at(made - timedelta(minutes=1)))[0]
    keep_day = _names(Windows.at(made - timedelta(days=1)))[1]
    found = _window_amounts(connection, reservation.key_id, [minute, day, usd])
    _put(
        connection,
        reservation.key_id,
        {
            minute: int(found.get(minute, 0)) + settlement.token_delta,
            day: int(found.get(day, 0)) + settlement.token_delta,
            usd: str(Decimal(str(found.get(usd, 0))) + settlement.usd_delta),
        },
    )
    day_key = (reservation.key_id, f"{windows.month}-{windows.day}")
    earlier = connection.execute("SELECT cost_usd FROM daily_usage WHERE key_id = ? AND day = ?", day_key).fetchone()
    total_cost = str(cost + (Decimal(earlier[0]) if earlier else 0))
    columns = ", ".join(_INT_FIELDS)
    additions = ", ".join(f"{name} = {name} + excluded.{name}" for name in _INT_FIELDS)
    connection.execute(
        f"INSERT INTO daily_usage (key_id, day, tenant, plan, {columns}, cost_usd) "  # noqa: S608 # nosec B608 # fixed column names
        f"VALUES (?, ?, ?, ?, {', '.join('?' * len(_INT_FIELDS))}, ?) "
        f"ON CONFLICT (key_id, day) DO UPDATE SET tenant = excluded.tenant, plan = excluded.plan, "
        f"{additions}, cost_usd = excluded.cost_usd",
        (*day_key, reservation.tenant, reservation.plan, *(figures[name] for name in _INT_FIELDS), total_cost),
    )
    # Windows no request can still count in: minutes before the previous one, days before yesterday, past months,
    # past quota periods.
    prune = [("minute:", keep_minute), ("day:", keep_day), ("usd:", usd)]
    if reservation.quota_counter:
        prune.append((QUOTA_PREFIX, reservation.quota_counter))
    for prefix, oldest_kept in prune:
        connection.execute(
            "DELETE FROM budget_windows WHERE key_id = ? AND window >= ? AND window < ?",
            (reservation.key_id, prefix, oldest_kept),
        )


class SqliteUsageStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def reserve(self, reservation: Reservation, caps: Caps) -> Reserved | Refused:
        with self._db.transaction() as connection:
            checked = check_windows(connection, reservation, caps)
            if isinstance(checked, Refused):
                return checked
            return write_windows(connection, reservation, checked)

    def settle(self, settlement: Settlement, stale: tuple[str, ...] = ()) -> None:
        """Replace the reservation by the real usage, count the request, prune past windows (`stale` is the
        DynamoDB store's; windows here are pruned by their time)."""
        with self._db.transaction() as connection:
            settle_windows(connection, settlement)

    def roll_up_finished_days(self, now: datetime) -> int:
        """Nothing to move: settlements write each day's row directly."""
        return 0

    def daily_usage(
        self, *, key_id: str | None = None, tenant: str | None = None, since: date | None = None
    ) -> list[DailyUsage]:
        conditions, parameters = [], []
        for column, value in (("key_id", key_id), ("tenant", tenant), ("day", since)):
            if value is not None:
                conditions.append(f"{column} {'>=' if column == 'day' else '='} ?")
                parameters.append(value.isoformat() if isinstance(value, date) else value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT key_id, tenant, plan, day, {', '.join(_INT_FIELDS)}, cost_usd FROM daily_usage"  # noqa: S608 # nosec B608 # fixed column names
                f"{where} ORDER BY day, tenant, key_id",
                parameters,
            ).fetchall()
        return [
            DailyUsage(
                key_id=row[0],
                tenant=row[1],
                plan=row[2],
                day=date.fromisoformat(row[3]),
                cost_usd=Decimal(row[-1]),
                **dict(zip(_INT_FIELDS, row[4:-1], strict=True)),
            )
            for row in rows
        ]
