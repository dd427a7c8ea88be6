"""OpenAI's embeddings format: requests read, answers written."""
