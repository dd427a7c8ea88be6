"""DynamoDB adapters: the only code that touches the gateway's tables."""
