"""gatewayctl: the operator CLI of llm-gateway (local gateway, keys, usage). Not shipped to Lambda."""
