"""OpenAI's chat completions format, both directions: the caller's side and an upstream's."""
