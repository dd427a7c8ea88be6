"""Anthropic's Messages format, both directions: the caller's side and an upstream's."""
