"""The local gateway: template.yaml served on 127.0.0.1 with API Gateway's behaviour, without Docker."""
