"""The daily usage rollup (scheduled): moves finished days' usage out of the keys' budget items."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from llm_gateway.observability import instrument
from llm_gateway.rollup import roll_up


def _roll_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return roll_up()


lambda_handler = instrument(_roll_up, correlation_paths.EVENT_BRIDGE)
