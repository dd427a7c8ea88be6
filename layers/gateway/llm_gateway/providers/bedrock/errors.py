"""Bedrock's failures as GatewayErrors by the error table, with its retry hint; account ids and ARNs redacted."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from llm_gateway.domain.ports import Deadline
from llm_gateway.domain.registry import Target
from llm_gateway.errors import (
    GatewayError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    TargetMisconfiguredError,
)
from llm_gateway.providers.error_table import bedrock_rule

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


_ARN_IN_MODEL_ID = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]*):")
_ANY_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',;]+")


_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


def bedrock_region(target: Target) -> str | None:
    """The target's region, else the region inside an ARN model id, else None (the function's own region)."""
    if target.region:
        return target.region
    match = _ARN_IN_MODEL_ID.match(target.model_id)
    return (match.group("region") or None) if match else None


def ensure_time_left(deadline: Deadline, target: Target) -> None:
    if deadline.remaining() <= 0:
        raise ProviderTimeoutError(
            f"The gateway's time budget ran out before Bedrock model '{target.model_id}' could be called."
        )


@contextmanager
def bedrock_errors(target: Target) -> Iterator[None]:
    """Re-raise botocore (and, mid-stream, urllib3) failures as the GatewayError the router understands."""
    # Lazy: botocore is already loaded once a client exists, and importing it here keeps cold starts lean.
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )
    from urllib3.exceptions import HTTPError as TransportError
    from urllib3.exceptions import ReadTimeoutError as StreamReadTimeoutError

    try:
        yield
    except ClientError as error:
        raise client_error(error, target) from error
    # A stalled stream raises urllib3's own ReadTimeoutError mid-iteration, not botocore's wrapper of it.
    except (ReadTimeoutError, StreamReadTimeoutError, ConnectTimeoutError) as error:
        raise ProviderTimeoutError(
            f"Bedrock model '{target.model_id}' did not answer within the time left for it "
            f"({error.__class__.__name__})."
        ) from error
    except NoCredentialsError as error:
        raise TargetMisconfiguredError(
            "The gateway has no AWS credentials to call Bedrock; this is a gateway configuration problem, "
            "not an error in the request.",
            code="upstream_access_denied",
        ) from error
    except ParamValidationError as error:
        # The translated request broke Bedrock's schema: the same request fails the same way every time.
        raise ProviderError(f"The gateway could not build a valid Bedrock request: {error}", retryable=False) from error
    except (BotoCoreError, TransportError) as error:
        raise ProviderError(
            f"Could not reach Bedrock for model '{target.model_id}' ({type(error).__name__})."
        ) from error


def client_error(error: ClientError, target: Target) -> GatewayError:
    """The caller's error for a Bedrock error response or stream error event, from the error table."""
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "")
    rule = bedrock_rule(code, message)
    said = _redact(message, target.model_id) or "no details"
    region = bedrock_region(target) or "the function's region"
    text = rule.message.format(model=target.model_id, region=region, said=said, code=code or "unknown error")
    return rule.build(text, retry_after=_retry_after(error))


def _retry_after(error: ClientError) -> float | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        # Absent, or an HTTP date: let the router choose its own backoff.
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _redact(text: str, model_id: str) -> str:
    """Bedrock's message without ARNs or account ids (the role's ARN appears in access errors), model id kept."""
    return model_id.join(
        _ACCOUNT_ID.sub("<account>", _ANY_ARN.sub("<arn>", piece)) for piece in text.split(model_id)
    ).strip()


def refused(message: str, path: str, code: str) -> ProviderRequestError:
    return ProviderRequestError(message, param=path or None, code=code)
