"""The admin API: keys, teams, tenants, budgets, usage and models for operators, IAM-authorised (docs/admin-api.md)."""
