"""DynamoDB update expressions built in parts, so that two stores' changes to one item go in one UpdateItem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Update:
    """The parts of one UpdateItem: its SET, ADD and REMOVE clauses, its conditions (all must hold) and the names
    and values they use. Two parts of one item must use distinct placeholders and touch distinct attributes."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def plus(self, other: Update) -> Update:
        return Update(
            {**self.names, **other.names},
            {**self.values, **other.values},
            self.sets + other.sets,
            self.adds + other.adds,
            self.removes + other.removes,
            self.conditions + other.conditions,
        )

    def request(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        """The UpdateItem (or a transaction's Update) parameters."""
        clauses = []
        for verb, parts in (("SET", self.sets), ("ADD", self.adds), ("REMOVE", self.removes)):
            if parts:
                clauses.append(f"{verb} " + ", ".join(parts))
        request: dict[str, Any] = {"TableName": table, "Key": key, "UpdateExpression": " ".join(clauses)}
        if self.names:
            request["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            request["ExpressionAttributeValues"] = dict(self.values)
        if self.conditions:
            request["ConditionExpression"] = " AND ".join(self.conditions)
        return request
