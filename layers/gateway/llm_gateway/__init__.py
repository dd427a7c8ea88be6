"""Serverless OpenAI-compatible LLM gateway: the package shared by every Lambda function."""
