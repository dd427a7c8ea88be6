"""Regenerate events/: API Gateway events made by `sam local generate-event`, edited to look like ours.

events/api/: proxy events for the API function, one per route and per error case.
events/authorizer/: REQUEST authorizer events, one per way of presenting (or not presenting) a key.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
# A syntactically valid key used only by the tests, which store its hash before replaying these events.
TEST_KEY = "sk-llmgw-" + "T3stKeyUsedOnlyByTheGatewayTestSuite0000000"
STAGE = "v1"
API_KEY_ID = "k7x2mq9d1e"
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "Say hello to the gateway"}]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

# What the authorizer passes on (REST APIs hand context values to the integration as strings).
AUTHORIZER_CONTEXT = {
    "principalId": "key_5f1c2a9b7e3d",
    "tenant": "acme",
    "keyId": "key_5f1c2a9b7e3d",
    "plan": "standard",
    "models": "*",
    "integrationLatency": 14,
}

# name -> (method, resource, body or None, extra headers, plain (not base64) body)
# What the Anthropic SDKs and Claude Code send with every request.
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "User-Agent": "claude-cli/2.1.332 (external, sdk-cli)"}
CASES: dict[str, tuple[str, str, Any, dict[str, str], bool]] = {
    "chat-completions": ("POST", "/chat/completions", CHAT, {}, False),
    "chat-completions-system-and-limits": (
        "POST",
        "/chat/completions",
        {
            "model": "echo",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "one two three four five"}]},
            ],
            "max_tokens": 3,
            "temperature": 0.2,
        },
        {},
        False,
    ),
    "chat-completions-stream": (
        "POST",
        "/chat/completions",
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
        {},
        False,
    ),
    "chat-completions-tools": (
        "POST",
        "/chat/completions",
        {
            **CHAT,
            "messages": [{"role": "user", "content": "Paris"}],
            "tools": TOOLS,
            "tool_choice": "required",
        },
        {},
        False,
    ),
    "messages": (
        "POST",
        "/messages",
        {
            "model": "echo",
            "max_tokens": 256,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Say hello to the gateway"}],
        },
        ANTHROPIC_HEADERS,
        False,
    ),
    "messages-stream-thinking-tools": (
        "POST",
        "/messages",
        {
            "model": "echo",
            "max_tokens": 2048,
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [
                {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
            ],
            "tool_choice": {"type": "auto"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
        },
        {**ANTHROPIC_HEADERS, "anthropic-beta": "interleaved-thinking-2025-05-14"},
        False,
    ),
    "messages-count-tokens": (
        "POST",
        "/messages/count_tokens",
        {"model": "echo", "messages": [{"role": "user", "content": "How many tokens is this?"}]},
        ANTHROPIC_HEADERS,
        False,
    ),
    "embeddings": (
        "POST",
        "/embeddings",
        {"model": "echo-embedding", "input": ["Say hello", "to the gateway"]},
        {},
        False,
    ),
    # What the openai SDK sends by default: base64, decoded on the client.
    "embeddings-base64-dimensions": (
        "POST",
        "/embeddings",
        {"model": "echo-embedding", "input": "Say hello to the gateway", "encoding_format": "base64", "dimensions": 64},
        {"User-Agent": "OpenAI/Python 3.54.0"},
        False,
    ),
    "embeddings-token-arrays": (
        "POST",
        "/embeddings",
        {"model": "echo-embedding", "input": [[9906, 11, 1917], [42, 43]]},
        {},
        False,
    ),
    "responses": (
        "POST",
        "/responses",
        {"model": "echo", "instructions": "Answer briefly.", "input": "Say hello to the gateway", "store": False},
        {},
        False,
    ),
    # What Codex CLI sends: the whole history each turn, freeform and function tools, signed reasoning asked for.
    "responses-stream-codex": (
        "POST",
        "/responses",
        {
            "model": "echo",
            "instructions": "You are a coding agent.",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]},
                {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"command":["ls"]}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "README.md"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "shell",
                    "description": "Run a command",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {"command": {"type": "array"}}},
                },
                {"type": "custom", "name": "apply_patch", "description": "Apply a patch", "format": {"type": "text"}},
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": False,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": False,
            "stream": True,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "0199c7a2-5b1e-7c3d-9f00-1234567890ab",
        },
        {},
        False,
    ),
    "error-responses-previous-response-id": (
        "POST",
        "/responses",
        {"model": "echo", "input": "And then?", "previous_response_id": "resp_0123456789abcdef"},
        {},
        False,
    ),
    "model-retrieve": ("GET", "/models/{model+}", None, {}, False),
    "model-retrieve-anthropic": ("GET", "/models/{model+}", None, ANTHROPIC_HEADERS, False),
    "error-model-retrieve-unknown": ("GET", "/models/{model+}", None, {}, False),
    "error-embeddings-chat-model": ("POST", "/embeddings", {"model": "echo", "input": "hello"}, {}, False),
    "error-embeddings-empty-input": ("POST", "/embeddings", {"model": "echo-embedding", "input": []}, {}, False),
    "error-chat-embedding-model": ("POST", "/chat/completions", {**CHAT, "model": "echo-embedding"}, {}, False),
    "models-anthropic": ("GET", "/models", None, ANTHROPIC_HEADERS, False),
    "models": ("GET", "/models", None, {}, False),
    "model-prompt": ("POST", "/model", {"prompt": "What is an API gateway?", "max_tokens": 64}, {}, False),
    "error-malformed-json": ("POST", "/chat/completions", '{"model": "echo", "messages": [', {}, False),
    "error-wrong-types": (
        "POST",
        "/chat/completions",
        {
            "model": "echo",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": "hot",
            "max_tokens": -1,
        },
        {},
        False,
    ),
    "error-missing-messages": ("POST", "/chat/completions", {"model": "echo"}, {}, False),
    "error-unknown-model": ("POST", "/chat/completions", {**CHAT, "model": "gpt-17-ultra"}, {}, False),
    "error-unsupported-content-type": (
        "POST",
        "/chat/completions",
        "model=echo",
        {"Content-Type": "text/plain"},
        False,
    ),
    "error-model-not-allowed": ("POST", "/chat/completions", CHAT, {}, False),
    # Valid JSON the parser cannot take (nesting), or text that is no Unicode (a lone surrogate escape).
    "error-deeply-nested-json": (
        "POST",
        "/chat/completions",
        '{"model": "echo", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        {},
        True,
    ),
    "error-lone-surrogate": (
        "POST",
        "/chat/completions",
        '{"model": "echo", "messages": [{"role": "user", "content": "\\ud800"}]}',
        {},
        False,
    ),
    # Bytes that are not UTF-8 at all, as API Gateway passes a binary body: base64-encoded.
    "error-invalid-utf8": (
        "POST",
        "/chat/completions",
        b'{"model": "echo", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        {},
        False,
    ),
    "error-model-prompt-empty": ("POST", "/model", {"prompt": ""}, {}, False),
    # Just over the function's 5,000,000-byte limit (API Gateway itself allows 10 MB).
    "error-oversized-body": (
        "POST",
        "/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": "x" * 5_000_000}]},
        {},
        True,
    ),
}


def sam_event(*arguments: str) -> dict[str, Any]:
    sam = shutil.which("sam", path=str(Path(sys.executable).parent)) or shutil.which("sam") or "sam"
    out = subprocess.run(
        [sam, "local", "generate-event", "apigateway", *arguments],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    ).stdout
    return dict(json.loads(out[: out.rindex("}") + 1]))


def generate(method: str, resource: str, body: str, path: str) -> dict[str, Any]:
    path = path.lstrip("/")
    return sam_event(
        "aws-proxy", "--method", method, "--path", path, "--resource", resource, "--stage", STAGE, "--body", body
    )


def realistic(
    event: dict[str, Any],
    name: str,
    method: str,
    resource: str,
    body: str | bytes | None,
    headers: dict[str, str],
    plain: bool,
) -> dict[str, Any]:
    """Edit the sample into what API Gateway sends for our routes."""
    host = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    base_headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": host,
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-6740a1b2-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        "x-api-key": TEST_KEY,
    }
    if body is None:
        del base_headers["Content-Type"]
    base_headers.update(headers)
    path, parameters = PATHS.get(name, (resource, {}))
    event.update(
        resource=resource,
        path=path,
        headers=base_headers,
        multiValueHeaders={k: [v] for k, v in base_headers.items()},
        queryStringParameters=None,
        multiValueQueryStringParameters=None,
        pathParameters=parameters or None,
        stageVariables=None,
    )
    if body is None:
        event.update(body=None, isBase64Encoded=False)
    elif isinstance(body, bytes):
        event.update(body=base64.b64encode(body).decode("ascii"), isBase64Encoded=True)
    elif plain:
        event.update(body=body, isBase64Encoded=False)
    context = event["requestContext"]
    context.update(
        requestId=f"evt-{name}",
        path=f"/{STAGE}{path}",
        resourcePath=resource,
        httpMethod=method,
        apiId="a1b2c3d4e5",
        domainName=host,
        extendedRequestId=f"ext-{name}",
    )
    context["authorizer"] = dict(AUTHORIZER_CONTEXT)
    if name == "error-model-not-allowed":
        context["authorizer"]["models"] = "claude-sonnet,nova-lite"
    context["identity"].update(
        sourceIp="203.0.113.7",
        userAgent="curl/8.5.0",
        apiKey="usage-metering-identifier-returned-by-the-authorizer",
        apiKeyId=API_KEY_ID,
    )
    return event


# Events of resources with path parameters: name -> (the path called, its path parameters).
PATHS: dict[str, tuple[str, dict[str, str]]] = {
    "model-retrieve": ("/models/echo-embedding", {"model": "echo-embedding"}),
    "model-retrieve-anthropic": ("/models/claude-sonnet-4-5-20250929", {"model": "claude-sonnet-4-5-20250929"}),
    "error-model-retrieve-unknown": ("/models/gpt-17-ultra", {"model": "gpt-17-ultra"}),
}


# name -> headers carrying (or not carrying) the key
AUTHORIZER_CASES: dict[str, dict[str, str]] = {
    "x-api-key": {"x-api-key": TEST_KEY},
    "bearer": {"Authorization": f"Bearer {TEST_KEY}"},
    "bearer-lowercase-header": {"authorization": f"bearer {TEST_KEY}"},
    "missing-key": {},
    "malformed-authorization": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    "malformed-key": {"x-api-key": "not-a-gateway-key"},
    "unknown-key": {"x-api-key": "sk-llmgw-" + "Unkn0wnKeyThatNoRecordWillEverHaveAtAll0000"},
}


def authorizer_event(name: str, headers: dict[str, str]) -> dict[str, Any]:
    event = sam_event("request-authorizer")
    all_headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "OpenAI/Python 1.99.0",
        "X-Forwarded-For": "203.0.113.7",
        **headers,
    }
    event.update(
        methodArn=f"arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/{STAGE}/POST/chat/completions",
        resource="/chat/completions",
        path="/chat/completions",
        httpMethod="POST",
        headers=all_headers,
        multiValueHeaders={k: [v] for k, v in all_headers.items()},
        queryStringParameters={},
        multiValueQueryStringParameters={},
        stageVariables={},
    )
    context = event["requestContext"]
    context.update(
        path=f"/{STAGE}/chat/completions",
        stage=STAGE,
        requestId=f"auth-{name}",
        resourcePath="/chat/completions",
        httpMethod="POST",
        apiId="a1b2c3d4e5",
    )
    context["identity"] = {"sourceIp": "203.0.113.7", "userAgent": all_headers["User-Agent"]}
    return event


def write(path: Path, event: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
    print(path.relative_to(ROOT))


def main() -> None:
    for name, (method, resource, payload, headers, plain) in CASES.items():
        body = None if payload is None else (payload if isinstance(payload, str | bytes) else json.dumps(payload))
        # Big or binary bodies are passed to sam as a placeholder and put back afterwards.
        path = PATHS.get(name, (resource, {}))[0]
        event = generate(method, resource, body if isinstance(body, str) and not plain else "{}", path)
        write(EVENTS / "api" / f"{name}.json", realistic(event, name, method, resource, body, headers, plain))
    for name, headers in AUTHORIZER_CASES.items():
        write(EVENTS / "authorizer" / f"{name}.json", authorizer_event(name, headers))


if __name__ == "__main__":
    main()
