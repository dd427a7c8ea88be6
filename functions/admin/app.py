"""The admin function: the admin API's routes (keys, teams, tenants, budgets, usage, models), IAM-authorised by API
Gateway -> llm_gateway/api/admin."""

from __future__ import annotations

from llm_gateway.api.admin.entry import lambda_handler

__all__ = ["lambda_handler"]
