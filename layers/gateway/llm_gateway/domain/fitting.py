"""Fitting a request to its model's traits before any provider call: translate what can be, refuse the rest.

These are the model's own rules, the same whichever provider serves it; each provider then applies its API's
format rules (Bedrock: providers/bedrock.py). A refusal is a 400 naming the parameter, so no provider is called
for a request it would refuse anyway.
"""

from __future__ import annotations

from llm_gateway.api.schemas import AssistantMessage, ChatCompletionRequest, ImagePart, ToolMessage, UserMessage
from llm_gateway.domain.registry import Capabilities, ModelTraits, Sampling, SamplingParameter
from llm_gateway.errors import InvalidRequestError
from llm_gateway.observability import logger


class UnsupportedParameterError(InvalidRequestError):
    """400: the model cannot take this parameter or content; `param` names it."""

    default_code = "unsupported_parameter"


def fit_request(request: ChatCompletionRequest, traits: ModelTraits) -> ChatCompletionRequest:
    """The request as the model takes it: sampling parameters reduced to what the model accepts, and a 400 for
    a value out of the model's range or for content the model cannot take."""
    request = _fit_sampling(request, traits.sampling)
    _check_capabilities(request, traits.capabilities)
    return request


def _fit_sampling(request: ChatCompletionRequest, sampling: Sampling) -> ChatCompletionRequest:
    drop: dict[SamplingParameter, str] = {}
    for name in sampling.unsupported:
        if getattr(request, name) is not None:
            drop[name] = "the model has no such parameter"
    for group in sampling.exclusive:
        named = [name for name in group.parameters if getattr(request, name) is not None and name not in drop]
        if len(named) > 1:
            keep = group.keep if group.keep in named else named[0]
            drop.update({name: f"the model refuses it together with {keep}" for name in named if name != keep})
    for name, reason in drop.items():
        # Chat front ends send these by default; dropping is what the model's documentation asks for, and the
        # log line keeps it from being silent.
        logger.info("sampling parameter not sent", extra={"parameter": name, "reason": reason})
    if drop:
        request = request.model_copy(update=dict.fromkeys(drop))
    for name, allowed in (("temperature", sampling.temperature), ("top_p", sampling.top_p)):
        value = getattr(request, name)
        if value is not None and allowed is not None and value not in allowed:
            raise UnsupportedParameterError(
                f"{name} must be between {allowed.min:g} and {allowed.max:g} for the model '{request.model}'; "
                f"{value:g} was given.",
                param=name,
                code="unsupported_value",
            )
    return request


def _check_capabilities(request: ChatCompletionRequest, capabilities: Capabilities) -> None:
    model = request.model
    if capabilities.tools is False:
        if request.tools:
            raise UnsupportedParameterError(f"The model '{model}' cannot call tools.", param="tools")
        for position, message in enumerate(request.messages):
            if isinstance(message, ToolMessage) or (isinstance(message, AssistantMessage) and message.tool_calls):
                raise UnsupportedParameterError(
                    f"The model '{model}' cannot call tools, so its history cannot hold tool calls or results.",
                    param=f"messages[{position}]",
                )
    forced = request.tool_choice not in (None, "auto", "none")
    if capabilities.tool_choice is False and forced:
        raise UnsupportedParameterError(
            f"The model '{model}' chooses its tools itself: tool_choice may only be 'auto' or 'none'.",
            param="tool_choice",
        )
    if capabilities.images is False:
        for position, message in enumerate(request.messages):
            if isinstance(message, UserMessage) and not isinstance(message.content, str):
                for part_position, part in enumerate(message.content):
                    if isinstance(part, ImagePart):
                        raise UnsupportedParameterError(
                            f"The model '{model}' does not take images.",
                            param=f"messages[{position}].content[{part_position}]",
                        )
    last = len(request.messages) - 1
    if capabilities.assistant_prefill is False and isinstance(request.messages[last], AssistantMessage):
        raise UnsupportedParameterError(
            f"The model '{model}' does not continue a final assistant message; end the conversation with a user "
            "or tool message.",
            param=f"messages[{last}]",
        )
