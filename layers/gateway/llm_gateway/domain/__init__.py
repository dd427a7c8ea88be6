"""Pure gateway logic: routing, budgets, usage, auth decisions. No I/O here."""
