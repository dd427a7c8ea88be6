"""The one error model: every failure the gateway reports is a GatewayError; each format has its own shape for it."""

from __future__ import annotations

import math
from typing import ClassVar


class GatewayError(Exception):
    """Base of every error a client may see; subclasses fix the HTTP status and OpenAI error type.

    `retryable` tells the router whether trying again (the same target later, or the next target)
    can succeed; it is false for anything the caller has to fix. `error_type` replaces the class's OpenAI
    error type for one error, so an upstream's own type reaches the caller unchanged.
    """

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}
        self.error_type = error_type or self.type


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class ContextLengthExceededError(InvalidRequestError):
    """400 `context_length_exceeded`: the prompt, with the output it asks for, does not fit the model's context
    window. OpenAI's code, which agents and SDKs watch for to compact their history; retrying cannot help."""

    default_code = "context_length_exceeded"

    def __init__(self, message: str, *, param: str | None = "messages", error_type: str | None = None) -> None:
        super().__init__(message, param=param, error_type=error_type)


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_denied"
    default_code = "model_not_allowed"


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str, *, param: str = "model") -> None:
        super().__init__(
            f"The model '{model}' does not exist or is not served by this gateway; GET /models lists the models.",
            param=param,
        )


class PayloadTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status = 415
    type = "invalid_request_error"
    default_code = "unsupported_media_type"


class RateLimitError(GatewayError):
    """429; `retry_after` seconds go to the Retry-After header so SDKs back off correctly."""

    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        # Rounded up: retrying after a rounded-down wait would arrive before the reset and be refused again.
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
        super().__init__(message, code=code, param=param, headers=headers)
        self.retry_after = retry_after


class ProviderError(GatewayError):
    """The model provider failed, is unreachable or answered something unusable (502).

    Retryable by default (5xx, connection errors, garbled answers); pass retryable=False for failures
    that retrying the same target cannot fix (the gateway's credentials or model access), so the router
    moves straight to the next target.
    """

    status = 502
    type = "api_error"
    default_code = "upstream_error"

    def __init__(
        self, message: str, *, code: str | None = None, retryable: bool = True, error_type: str | None = None
    ) -> None:
        super().__init__(message, code=code, error_type=error_type)
        self.retryable = retryable


class TargetMisconfiguredError(ProviderError):
    """A target cannot serve any request as configured: model access not enabled, access denied, on-demand
    invocation not supported, an unknown model id, rejected gateway credentials (502).

    The operator's fault, never the caller's: the router skips the target without retrying it and tries the
    next one; with none left the caller gets a 502 (or a 429 if an earlier target was throttled).
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code, retryable=False)


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the gateway's time budget (504)."""

    status = 504
    default_code = "upstream_timeout"


class ProviderRateLimitError(RateLimitError):
    """The provider throttled the gateway (429, with the provider's Retry-After when it gave one)."""

    default_code = "upstream_rate_limited"
    retryable = True


class ProviderRequestError(InvalidRequestError):
    """The provider refused the request itself as invalid (400); retrying cannot help."""

    default_code = "upstream_invalid_request"


class ConfigurationError(GatewayError):
    """The deployment is misconfigured (bad model registry, missing table); never the caller's fault."""

    status = 500
    type = "api_error"
    default_code = "gateway_misconfigured"


class ConflictError(GatewayError):
    """409: the operation clashes with the state it finds (a team that exists, a key already revoked)."""

    status = 409
    type = "invalid_request_error"
    default_code = "conflict"
