"""A key's API Gateway key moved between usage plans, its records following, and undone when a step fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from llm_gateway.domain.keys import KeyRecord
from llm_gateway.domain.stores import KeyRecords
from llm_gateway.errors import GatewayError


class KeyAdminFailure(GatewayError):
    """502: an AWS call behind the operation failed; what it had done was rolled back."""

    status = 502
    type = "api_error"
    default_code = "aws_call_failed"


class PartialFailureError(KeyAdminFailure):
    """An operation failed AND its clean-up failed: the message says exactly what is left and how to fix it."""

    default_code = "partial_failure"


class ApiGatewayKeys(Protocol):
    """The calls KeyAdmin makes on API Gateway, with boto3's names and shapes."""

    def create_api_key(self, **arguments: Any) -> Mapping[str, Any]: ...

    def create_usage_plan_key(self, **arguments: Any) -> Mapping[str, Any]: ...

    def delete_usage_plan_key(self, **arguments: Any) -> Mapping[str, Any]: ...

    def delete_api_key(self, **arguments: Any) -> Mapping[str, Any]: ...

    def update_api_key(self, **arguments: Any) -> Mapping[str, Any]: ...

    def get_paginator(self, operation: Literal["get_api_keys"]) -> Any: ...


def move_plan(
    apigateway: ApiGatewayKeys, store: KeyRecords, plans: Mapping[str, str], records: Sequence[KeyRecord], plan: str
) -> KeyRecord:
    """Move the key whose serving records (the active one last, all sharing one API Gateway key) are `records` to
    `plan`; its changed active record.

    API Gateway holds an API key on at most one usage plan per API stage (joining a second is refused: "cannot
    reference multiple Usage Plans with the same API Stage"), so the safe order is: leave the old usage plan, join
    the new one, then write the records. A request arriving between the first two calls (a fraction of a second)
    is refused by API Gateway as from a key on no plan. A failed step undoes the earlier ones (KeyAdminFailure);
    when the undoing fails too, PartialFailureError says what is left and the command that fixes it.
    """
    active = records[-1]
    api_key_id, old_plan = active.api_key_id, active.plan
    # A plan that is no longer configured has no usage plan to leave.
    old_usage_plan, new_usage_plan = plans.get(old_plan), plans[plan]
    if old_usage_plan is not None:
        try:
            apigateway.delete_usage_plan_key(usagePlanId=old_usage_plan, keyId=api_key_id)
        except Exception as failure:
            raise KeyAdminFailure(
                f"Moving key {active.key_id} to plan {plan} failed; nothing changed: {failure}"
            ) from failure
    joined = False
    written: list[KeyRecord] = []
    try:
        apigateway.create_usage_plan_key(usagePlanId=new_usage_plan, keyId=api_key_id, keyType="API_KEY")
        joined = True
        for record in records:
            written.append(store.set_plan(record, plan))
    except Exception as failure:
        _move_back(
            apigateway,
            store,
            active,
            written,
            old_usage_plan=old_usage_plan,
            joined_usage_plan=new_usage_plan if joined else None,
            failure=failure,
        )
        raise KeyAdminFailure(
            f"Moving key {active.key_id} to plan {plan} failed and was rolled back: {failure}"
        ) from failure
    return written[-1]


def _move_back(
    apigateway: ApiGatewayKeys,
    store: KeyRecords,
    active: KeyRecord,
    written: Sequence[KeyRecord],
    *,
    old_usage_plan: str | None,
    joined_usage_plan: str | None,
    failure: Exception,
) -> None:
    """Undo a failed move: the records back on the old plan, the API Gateway key off the new usage plan and back on
    the old one. Each step that cannot be done is named, with the command that does it."""
    api_key_id = active.api_key_id
    left: list[str] = []
    for record in written:
        try:
            store.set_plan(record, active.plan)
        except Exception:
            left.append(f"the record of secret {record.key_hint} names the new plan")
    if joined_usage_plan is not None:
        try:
            apigateway.delete_usage_plan_key(usagePlanId=joined_usage_plan, keyId=api_key_id)
        except Exception:
            left.append(
                f"remove it from the new usage plan: aws apigateway delete-usage-plan-key "
                f"--usage-plan-id {joined_usage_plan} --key-id {api_key_id}"
            )
    if old_usage_plan is not None:
        try:
            apigateway.create_usage_plan_key(usagePlanId=old_usage_plan, keyId=api_key_id, keyType="API_KEY")
        except Exception:
            left.append(
                f"put it back on its usage plan: aws apigateway create-usage-plan-key "
                f"--usage-plan-id {old_usage_plan} --key-id {api_key_id} --key-type API_KEY"
            )
    if left:
        raise PartialFailureError(
            f"Moving key {active.key_id} off plan {active.plan} failed ({failure}) and could not be fully undone: "
            + "; ".join(left)
        ) from failure
