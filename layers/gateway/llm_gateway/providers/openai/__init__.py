"""Any OpenAI-compatible URL: its HTTP calls, streams and failures, the request passed through in its own format."""
