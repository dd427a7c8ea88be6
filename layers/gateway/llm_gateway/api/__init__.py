"""HTTP-facing pieces: OpenAI and /model request/response schemas, response rendering."""
