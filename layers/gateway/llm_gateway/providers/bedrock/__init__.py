"""Amazon Bedrock: Converse, Anthropic's body on InvokeModel, CountTokens and embeddings; calls, streams, failures."""
