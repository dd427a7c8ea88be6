"""Fitting a request to its model's traits before any provider call: translate what can be, refuse the rest.

These are the model's own rules, the same whichever provider serves it; each provider then applies its API's
format rules (Bedrock: providers/bedrock.py). A refusal is a 400 naming the parameter, so no provider is called
for a request it would refuse anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llm_gateway.domain.conversation import (
    ChatRequest,
    DocumentBlock,
    ImageBlock,
    ReasoningBlock,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from llm_gateway.domain.registry import Capabilities, ModelTraits, Sampling, SamplingParameter
from llm_gateway.errors import InvalidRequestError


class UnsupportedParameterError(InvalidRequestError):
    """400: the model cannot take this parameter or content; `param` names it."""

    default_code = "unsupported_parameter"


@dataclass(frozen=True)
class Fitted:
    """A request as its model takes it, and the sampling parameters removed from it with why (parameter name ->
    reason): chat front ends send them by default and dropping is what the model's documentation asks for, so the
    caller logs them rather than leave the drop silent."""

    request: ChatRequest
    dropped: Mapping[SamplingParameter, str] = field(default_factory=dict)


def fit_request(request: ChatRequest, traits: ModelTraits) -> Fitted:
    """The request as the model takes it: sampling parameters reduced to what the model accepts, and a 400 for
    a value out of the model's range or for content the model cannot take."""
    fitted = _fit_sampling(request, traits.sampling)
    _check_capabilities(fitted.request, traits.capabilities)
    return fitted


def _fit_sampling(request: ChatRequest, sampling: Sampling) -> Fitted:
    drop: dict[SamplingParameter, str] = {}
    for name in sampling.unsupported:
        if getattr(request, name) is not None:
            drop[name] = "the model has no such parameter"
    for group in sampling.exclusive:
        named = [name for name in group.parameters if getattr(request, name) is not None and name not in drop]
        if len(named) > 1:
            keep = group.keep if group.keep in named else named[0]
            drop.update({name: f"the model refuses it together with {keep}" for name in named if name != keep})
    if drop:
        request = request.with_(**dict.fromkeys(drop))
    for name, allowed in (("temperature", sampling.temperature), ("top_p", sampling.top_p)):
        value = getattr(request, name)
        if value is not None and allowed is not None and value not in allowed:
            raise UnsupportedParameterError(
                f"{name} must be between {allowed.min:g} and {allowed.max:g} for the model '{request.model}'; "
                f"{value:g} was given.",
                param=name,
                code="unsupported_value",
            )
    return Fitted(request, drop)


def _check_capabilities(request: ChatRequest, capabilities: Capabilities) -> None:
    model = request.model
    if capabilities.tools is False:
        if request.tools:
            raise UnsupportedParameterError(f"The model '{model}' cannot call tools.", param="tools")
        for message in request.messages:
            if any(isinstance(block, ToolCallBlock | ToolResultBlock) for block in message.content):
                raise UnsupportedParameterError(
                    f"The model '{model}' cannot call tools, so its history cannot hold tool calls or results.",
                    param=message.path or "messages",
                )
    forced = request.tool_choice is not None and request.tool_choice.mode in ("required", "tool")
    if capabilities.tool_choice is False and forced:
        raise UnsupportedParameterError(
            f"The model '{model}' chooses its tools itself: tool_choice may only be 'auto' or 'none'.",
            param="tool_choice",
        )
    if capabilities.reasoning is False and request.reasoning is not None and request.reasoning.enabled:
        raise UnsupportedParameterError(f"The model '{model}' does not reason.", param="reasoning_effort")
    for block in request.blocks():
        if capabilities.images is False and isinstance(block, ImageBlock):
            raise UnsupportedParameterError(f"The model '{model}' does not take images.", param=block.path or None)
        if capabilities.documents is False and isinstance(block, DocumentBlock):
            raise UnsupportedParameterError(f"The model '{model}' does not take documents.", param=block.path or None)
    last = request.messages[-1] if request.messages else None
    if (
        capabilities.assistant_prefill is False
        and last is not None
        and last.role == "assistant"
        and any(isinstance(block, TextBlock | ReasoningBlock) for block in last.content)
    ):
        raise UnsupportedParameterError(
            f"The model '{model}' does not continue a final assistant message; end the conversation with a user "
            "or tool message.",
            param=last.path or "messages",
        )
