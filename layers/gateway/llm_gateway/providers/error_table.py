"""The provider error table: each provider failure the gateway recognises and what the caller gets for it.

Providers look their failures up here, tests walk every row (streamed and not), and docs/models.md's error table is
rendered from the same rows (`markdown_table()`), so code and docs cannot drift apart.

Blame decides routing: `request` errors are the caller's to fix and end the request; `target` errors are the
deployment's (the target can never work as configured), so the router skips that target without retrying it;
`capacity` and `provider` errors are transient, retried with backoff and then left for the next target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from llm_gateway.errors import (
    ContextLengthExceededError,
    GatewayError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderTimeoutError,
    RateLimitError,
    TargetMisconfiguredError,
)

Blame = Literal["request", "target", "capacity", "provider"]
Kind = Literal["exception", "stop reason", "HTTP status", "error in a 200 answer"]

BEDROCK_ERRORS_SOURCE = (
    "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors"
)
BEDROCK_TROUBLESHOOTING = "https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html"
BEDROCK_STOP_REASONS_SOURCE = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax"
OPENAI_ERRORS_SOURCE = "https://platform.openai.com/docs/guides/error-codes"
VLLM_MAX_MODEL_LEN_SOURCE = "https://docs.vllm.ai/en/latest/configuration/engine_args/#-max-model-len"


@dataclass(frozen=True)
class ErrorRule:
    """One row of the table.

    `upstream` names the failure as the provider does (exception codes, HTTP statuses, stop reasons); `phrases`
    narrow a row to messages containing one of them (lower case), for providers that give nothing better than a
    message; `upstream_code` narrows an HTTP row to the upstream's own `error.code`. `keep_upstream` rows keep
    the upstream's own code, type and param when it sends them (`code` otherwise). `message` is the caller's
    message, with {model}, {region}, {target}, {status}, {code} and {said} (the provider's own words, redacted)
    filled in by the provider.
    """

    provider: Literal["bedrock", "openai"]
    kind: Kind
    upstream: tuple[str, ...]
    error: type[GatewayError]
    code: str
    blame: Blame
    message: str
    phrases: tuple[str, ...] = ()
    upstream_code: str | None = None
    keep_upstream: bool = False
    source: str = ""

    @property
    def status(self) -> int:
        return self.error.status

    @property
    def type(self) -> str:
        return self.error.type

    def matches(self, message: str) -> bool:
        lowered = message.lower()
        return not self.phrases or any(phrase in lowered for phrase in self.phrases)

    def build(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        upstream_code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
    ) -> GatewayError:
        """The caller's error for this row; the upstream's code, param and type are kept where the row says so."""
        if not self.keep_upstream:
            upstream_code = param = error_type = None
        code = upstream_code or self.code
        if issubclass(self.error, RateLimitError):
            return self.error(message, retry_after=retry_after, code=code)
        if issubclass(self.error, TargetMisconfiguredError):
            return self.error(message, code=code)
        if issubclass(self.error, ContextLengthExceededError):
            return self.error(message, param=param or "messages", error_type=error_type)
        if issubclass(self.error, ProviderError):
            return self.error(message, code=code, error_type=error_type)
        return self.error(message, code=code, param=param, error_type=error_type)


_ON_DEMAND_SOURCE = "https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html"
_NOT_THE_CALLERS_FAULT = "This is a gateway configuration problem, not an error in the request."

BEDROCK_ERRORS: tuple[ErrorRule, ...] = (
    ErrorRule(
        "bedrock",
        "exception",
        ("ValidationException",),
        ContextLengthExceededError,
        "context_length_exceeded",
        "request",
        "The conversation is too long for model '{model}'; shorten it or lower max_tokens. Bedrock said: {said}",
        # Bedrock's own wording and Anthropic's two wordings as Bedrock passes them on ("The model returned the
        # following errors: prompt is too long: 200049 tokens > 200000 maximum").
        phrases=("input is too long", "prompt is too long", "input length and `max_tokens` exceed context limit"),
        source=BEDROCK_TROUBLESHOOTING,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ValidationException",),
        TargetMisconfiguredError,
        "upstream_inference_profile_required",
        "target",
        "Bedrock model '{model}' cannot be invoked on demand: the registry must name an inference profile (us., eu., "
        "global. ...) or an ARN for it. " + _NOT_THE_CALLERS_FAULT + " Bedrock said: {said}",
        # Cut before the apostrophe, which Bedrock writes as a typographic one (U+2019).
        phrases=("on-demand throughput isn",),
        source=_ON_DEMAND_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ValidationException",),
        TargetMisconfiguredError,
        "upstream_model_not_found",
        "target",
        "Bedrock does not know model '{model}' in {region}; the registry names a wrong model id. "
        + _NOT_THE_CALLERS_FAULT
        + " Bedrock said: {said}",
        phrases=("model identifier is invalid",),
        source=BEDROCK_TROUBLESHOOTING,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ValidationException",),
        ProviderRequestError,
        "upstream_invalid_request",
        "request",
        "Bedrock rejected the request: {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("AccessDeniedException",),
        TargetMisconfiguredError,
        "upstream_access_denied",
        "target",
        "The gateway's IAM role may not invoke Bedrock model '{model}' in {region}, or model access is not enabled "
        "for it. " + _NOT_THE_CALLERS_FAULT + " Bedrock said: {said}",
        source=BEDROCK_TROUBLESHOOTING,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ResourceNotFoundException",),
        TargetMisconfiguredError,
        "upstream_model_not_found",
        "target",
        "Bedrock has no model '{model}' in {region} available to the gateway (unknown id, end of life, or the "
        "model's use case form not submitted). " + _NOT_THE_CALLERS_FAULT + " Bedrock said: {said}",
        source=BEDROCK_TROUBLESHOOTING,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        (
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "IncompleteSignature",
            "InvalidClientTokenId",
        ),
        TargetMisconfiguredError,
        "upstream_access_denied",
        "target",
        "Bedrock rejected the gateway's AWS credentials. " + _NOT_THE_CALLERS_FAULT,
        source=BEDROCK_TROUBLESHOOTING,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ThrottlingException", "ServiceQuotaExceededException"),
        ProviderRateLimitError,
        "upstream_rate_limited",
        "capacity",
        "Bedrock is throttling the gateway's calls to model '{model}': {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ModelNotReadyException",),
        ProviderError,
        "upstream_model_not_ready",
        "capacity",
        "Bedrock model '{model}' is not ready to serve yet: {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ModelTimeoutException",),
        ProviderTimeoutError,
        "upstream_timeout",
        "provider",
        "Bedrock model '{model}' timed out while generating: {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ModelErrorException", "ModelStreamErrorException"),
        ProviderError,
        "upstream_model_error",
        "provider",
        "Bedrock model '{model}' failed while processing the request: {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("ServiceUnavailableException",),
        ProviderError,
        "upstream_unavailable",
        "provider",
        "Bedrock is unavailable for model '{model}': {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "exception",
        ("InternalServerException", "any other exception"),
        ProviderError,
        "upstream_error",
        "provider",
        "Bedrock failed to serve model '{model}' ({code}): {said}",
        source=BEDROCK_ERRORS_SOURCE,
    ),
    ErrorRule(
        "bedrock",
        "stop reason",
        ("malformed_model_output", "malformed_tool_use"),
        ProviderError,
        "upstream_malformed_output",
        "provider",
        "Bedrock model '{model}' produced output it could not parse ({said}); retrying may succeed.",
        source=BEDROCK_STOP_REASONS_SOURCE,
    ),
)

_REQUEST_STATUSES = ("400", "409", "413", "422")

OPENAI_ERRORS: tuple[ErrorRule, ...] = (
    ErrorRule(
        "openai",
        "HTTP status",
        _REQUEST_STATUSES,
        ContextLengthExceededError,
        "context_length_exceeded",
        "request",
        "{said}",
        upstream_code="context_length_exceeded",
        keep_upstream=True,
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        _REQUEST_STATUSES,
        ContextLengthExceededError,
        "context_length_exceeded",
        "request",
        "{said}",
        # vLLM answers with its HTTP status as the code, so only its message tells ("This model's maximum context
        # length is 4096 tokens and your request has 12 input tokens"); OpenAI's older models said the same.
        phrases=("maximum context length is",),
        keep_upstream=True,
        source=VLLM_MAX_MODEL_LEN_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        _REQUEST_STATUSES,
        ProviderRequestError,
        "upstream_invalid_request",
        "request",
        "{said}",
        keep_upstream=True,
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        ("401", "403"),
        TargetMisconfiguredError,
        "upstream_auth_failed",
        "target",
        "The provider behind {target} rejected the gateway's credentials (HTTP {status}); the caller's API key is "
        "not at fault, an operator must fix the gateway's provider key.",
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        ("404",),
        TargetMisconfiguredError,
        "upstream_not_found",
        "target",
        "The provider behind {target} does not know this model or path (HTTP 404); the gateway's model registry "
        "needs fixing.",
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        ("429",),
        TargetMisconfiguredError,
        "upstream_quota_exhausted",
        "target",
        "The gateway's account with the provider behind {target} has no quota or credit left; an operator must fix "
        "its plan or billing. " + _NOT_THE_CALLERS_FAULT,
        upstream_code="insufficient_quota",
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        ("429",),
        ProviderRateLimitError,
        "upstream_rate_limited",
        "capacity",
        "The provider behind {target} is rate limiting the gateway; retry later.",
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "HTTP status",
        ("5xx", "any other status"),
        ProviderError,
        "upstream_error",
        "provider",
        "The provider behind {target} failed (HTTP {status}).",
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "error in a 200 answer",
        ("error object in a stream or body",),
        ContextLengthExceededError,
        "context_length_exceeded",
        "request",
        "{said}",
        upstream_code="context_length_exceeded",
        keep_upstream=True,
        source=OPENAI_ERRORS_SOURCE,
    ),
    ErrorRule(
        "openai",
        "error in a 200 answer",
        ("error object in a stream or body",),
        ProviderError,
        "upstream_error",
        "provider",
        "The provider behind {target} failed: {said}",
        keep_upstream=True,
        source=OPENAI_ERRORS_SOURCE,
    ),
)

ERROR_TABLE: tuple[ErrorRule, ...] = BEDROCK_ERRORS + OPENAI_ERRORS


# The stop reasons that are errors rather than answers.
BEDROCK_ERROR_STOP_REASONS = frozenset(
    name for rule in BEDROCK_ERRORS if rule.kind == "stop reason" for name in rule.upstream
)


def bedrock_rule(code: str, message: str, *, kind: Kind = "exception") -> ErrorRule:
    """The row for a Bedrock exception code (any case: stream events spell them camelCase) and its message, or
    for one of BEDROCK_ERROR_STOP_REASONS; an exception no row names gets the catch-all row."""
    wanted = code.lower()
    for rule in BEDROCK_ERRORS:
        if rule.kind == kind and wanted in {name.lower() for name in rule.upstream} and rule.matches(message):
            return rule
    if kind != "exception":
        raise ValueError(f"'{code}' is not a Bedrock stop reason the error table maps")
    return next(rule for rule in BEDROCK_ERRORS if "any other exception" in rule.upstream)


def openai_rule(status: int | None, upstream_code: str | None, message: str) -> ErrorRule:
    """The row for an upstream's HTTP status (None: an error inside a 200 answer), its error code and message."""
    kind: Kind = "error in a 200 answer" if status is None else "HTTP status"
    for rule in OPENAI_ERRORS:
        if rule.kind != kind:
            continue
        if status is not None and str(status) not in rule.upstream and not _catch_all(rule, status):
            continue
        if rule.upstream_code is not None and rule.upstream_code != upstream_code:
            continue
        if rule.phrases and (upstream_code is not None or not rule.matches(message)):
            continue
        return rule
    raise AssertionError(f"the error table has no row for HTTP {status}")  # the catch-all rows make this unreachable


def _catch_all(rule: ErrorRule, status: int) -> bool:
    known = {int(name) for row in OPENAI_ERRORS for name in row.upstream if name.isdigit()}
    return "any other status" in rule.upstream and status not in known


def markdown_table(rules: Iterable[ErrorRule] = ERROR_TABLE) -> str:
    """docs/models.md's error table: provider, what the provider says, and the caller's status, type and code."""
    lines = [
        "| provider | provider error | when | caller gets | type | code | blame |",
        "|----------|----------------|------|-------------|------|------|-------|",
    ]
    for rule in rules:
        names = ", ".join(f"`{name}`" if " " not in name or name[0].isdigit() else name for name in rule.upstream)
        when = []
        if rule.upstream_code:
            when.append(f"code `{rule.upstream_code}`")
        if rule.phrases:
            when.append("message contains " + " or ".join(f'"{phrase}"' for phrase in rule.phrases))
        code, error_type = f"`{rule.code}`", f"`{rule.type}`"
        if rule.keep_upstream:
            error_type = f"the upstream's own, else {error_type}"
            if not issubclass(rule.error, ContextLengthExceededError):
                code = f"the upstream's own, else {code}"
        provider = "Bedrock" if rule.provider == "bedrock" else "OpenAI-compatible"
        lines.append(
            f"| {provider} | {rule.kind}: {names} | {'; '.join(when) or '-'} | {rule.status} | {error_type} "
            f"| {code} | {rule.blame} |"
        )
    return "\n".join(lines)
