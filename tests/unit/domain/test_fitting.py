"""Fitting requests to their model's traits: sampling parameters translated or refused, capabilities enforced."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.config import shipped_registry_text
from llm_gateway.domain.conversation import ChatRequest
from llm_gateway.domain.fitting import UnsupportedParameterError, fit_request
from llm_gateway.domain.registry import ModelRegistry, ModelTraits
from tests.fakes.requests import openai_chat

SHIPPED = ModelRegistry.model_validate_json(shipped_registry_text())
SONNET = SHIPPED.models["claude-sonnet-4-5"].traits
USER = [{"role": "user", "content": "hi"}]


def request(**fields: Any) -> ChatRequest:
    return openai_chat({"model": "m", "messages": USER, **fields})


def traits(**groups: Any) -> ModelTraits:
    return ModelTraits.model_validate(groups)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        pytest.param({"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3, "top_p": None}, id="both-keep-temp"),
        pytest.param({"top_p": 0.9}, {"temperature": None, "top_p": 0.9}, id="top-p-alone-is-kept"),
        pytest.param({"temperature": 0}, {"temperature": 0, "top_p": None}, id="zero-temperature-is-a-value"),
        pytest.param({}, {"temperature": None, "top_p": None}, id="neither"),
    ],
)
def test_claude_4_5_gets_temperature_or_top_p_never_both(sent: dict[str, Any], kept: dict[str, Any]) -> None:
    fitted = fit_request(request(**sent), SONNET).request
    assert {"temperature": fitted.temperature, "top_p": fitted.top_p} == kept


def test_a_dropped_parameter_is_named_with_its_reason() -> None:
    fitted = fit_request(request(temperature=0.3, top_p=0.9), SONNET)
    (reason,) = fitted.dropped.values()
    assert list(fitted.dropped) == ["top_p"] and "temperature" in reason


def test_exclusive_keeps_the_first_named_when_its_keeper_is_absent() -> None:
    rules = traits(sampling={"exclusive": [{"parameters": ["temperature", "top_p"], "keep": "top_p"}]})
    assert fit_request(request(temperature=0.5, top_p=0.5), rules).request.temperature is None
    assert fit_request(request(temperature=0.5), rules).request.temperature == 0.5


def test_unsupported_sampling_parameters_are_not_sent() -> None:
    rules = traits(sampling={"unsupported": ["temperature", "top_p"]})
    fitted = fit_request(request(temperature=0.7, top_p=0.5), rules).request
    assert (fitted.temperature, fitted.top_p) == (None, None)


@pytest.mark.parametrize(("field", "value"), [("temperature", 1.2), ("temperature", 2.0)])
def test_a_value_outside_the_models_range_is_a_400_naming_it(field: str, value: float) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        fit_request(request(**{field: value}), SONNET)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, field, "unsupported_value")
    assert "between 0 and 1" in caught.value.message


def test_the_range_is_checked_on_what_is_sent() -> None:
    rules = traits(sampling={"top_p": {"min": 0.5, "max": 1}, "unsupported": ["top_p"]})
    assert fit_request(request(top_p=0.1), rules).request.top_p is None


TOOL = {"type": "function", "function": {"name": "lookup"}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


@pytest.mark.parametrize(
    ("capabilities", "fields", "param"),
    [
        pytest.param({"tools": False}, {"tools": [TOOL]}, "tools", id="tools"),
        pytest.param(
            {"tools": False},
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "tool_calls": [CALL]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "x"},
                ]
            },
            "messages[1]",
            id="tool-history",
        ),
        pytest.param({"tool_choice": False}, {"tools": [TOOL], "tool_choice": "required"}, "tool_choice", id="forced"),
        pytest.param(
            {"images": False},
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "?"}, IMAGE]}]},
            "messages[0].content[1]",
            id="images",
        ),
        pytest.param(
            {"assistant_prefill": False},
            {"messages": [*USER, {"role": "assistant", "content": "Sure:"}]},
            "messages[1]",
            id="prefill",
        ),
    ],
)
def test_what_the_model_cannot_take_is_a_400_naming_it(
    capabilities: dict[str, Any], fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(UnsupportedParameterError) as caught:
        fit_request(request(**fields), traits(capabilities=capabilities))
    assert (caught.value.status, caught.value.param) == (400, param)
    # The same request fits a model whose capability is unknown (not stated) or stated as present.
    fit_request(request(**fields), traits())
    fit_request(request(**fields), traits(capabilities=dict.fromkeys(capabilities, True)))


def test_auto_and_none_tool_choice_fit_a_model_that_cannot_be_forced() -> None:
    rules = traits(capabilities={"tool_choice": False})
    for choice in ("auto", "none"):
        fit_request(request(tools=[TOOL], tool_choice=choice), rules)
