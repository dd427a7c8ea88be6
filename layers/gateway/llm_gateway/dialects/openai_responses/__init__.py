"""OpenAI's Responses API (POST /responses): its requests, answers, streams and errors."""
