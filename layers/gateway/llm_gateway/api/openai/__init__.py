"""The OpenAI surface: chat completions, the /model prompt endpoint and the model list in OpenAI's shapes."""
