"""The tools of a Responses API request read into the conversation model: function and custom tools (a custom
tool becomes a function of one string), the tool choice, and OpenAI's hosted web search, which clients offer by
default and no provider behind the gateway runs."""

from __future__ import annotations

from llm_gateway.dialects.openai_responses.schemas import (
    CustomTool,
    FunctionTool,
    NamedToolChoice,
    OtherTool,
    ResponsesRequest,
)
from llm_gateway.domain.conversation import ToolChoice, ToolSpec
from llm_gateway.errors import InvalidRequestError
from llm_gateway.observability import logger

# OpenAI's hosted web search tools, which clients offer by default (Codex does).
_WEB_SEARCH = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"})
# A freeform tool as other providers take it: one string argument.
CUSTOM_INPUT = "input"


def offered_web_search(request: ResponsesRequest) -> list[str]:
    """The places in `tools` of hosted web search tools that are only offered, not required: no provider behind
    the gateway runs them, so the model is answered without them (the model may search, it need not). Codex offers
    `{"type": "web_search", "external_web_access": false}` in its default configuration, which must work."""
    choice = request.tool_choice
    if choice == "required" and not request.callable_tools():
        return []  # the web search is the one tool the model must call
    forced = choice.type if isinstance(choice, NamedToolChoice) else None
    return [
        f"tools[{position}]"
        for position, tool in enumerate(request.tools or [])
        if isinstance(tool, OtherTool) and tool.type in _WEB_SEARCH and tool.type != forced
    ]


def tools(request: ResponsesRequest, *, hosted: bool) -> list[ToolSpec]:
    """Function and custom tools, those of namespaces included (by their own names, which must be unique). A web
    search tool only offered is left out, with a log line naming it (`offered_web_search`); any other hosted tool,
    and a web search the request requires, is refused, since no provider behind the gateway runs it (`hosted`:
    the upstream does, from the body it gets)."""
    left_out = [] if hosted else offered_web_search(request)
    for position, tool in enumerate(request.tools or []):
        if hosted:
            continue
        if f"tools[{position}]" in left_out:
            logger.info(
                "hosted tool not offered to the model", extra={"tool": tool.type, "param": f"tools[{position}]"}
            )
        elif isinstance(tool, OtherTool):
            raise InvalidRequestError(
                f"The gateway runs no hosted '{tool.type}' tool; give function, custom or namespace tools only "
                '(Codex: web_search = "disabled").',
                param=f"tools[{position}].type",
                code="unsupported_tool",
            )
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for tool, _, path in request.callable_tools():
        if tool.name in seen:
            raise InvalidRequestError(f"Two tools are named '{tool.name}'.", param=f"{path}.name")
        seen.add(tool.name)
        if isinstance(tool, FunctionTool):
            extra = dict(tool.model_extra or {})
            if tool.strict is not None:
                extra["strict"] = tool.strict
            specs.append(ToolSpec(tool.name, tool.description, tool.parameters, extra=extra, path=path))
        else:
            specs.append(_custom_tool(tool, path))
    return specs


def _custom_tool(tool: CustomTool, path: str) -> ToolSpec:
    """A freeform tool as a function of one string: its grammar, if it has one, told to the model in the
    description (only OpenAI's own models are held to it)."""
    description = tool.description or ""
    fmt = tool.format or {}
    if fmt.get("type") == "grammar":
        syntax, definition = fmt.get("syntax", ""), fmt.get("definition", "")
        description += f"\n\nThe input must follow this {syntax} grammar:\n{definition}"
    elif fmt and fmt.get("type") != "text":
        raise InvalidRequestError(
            f"The gateway takes a custom tool's format 'text' or 'grammar', not '{fmt.get('type')}'.",
            param=f"{path}.format",
            code="unsupported_parameter",
        )
    parameters = {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's whole input, as text."}},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }
    return ToolSpec(tool.name, description.strip() or None, parameters, extra=dict(tool.model_extra or {}), path=path)


def tool_choice(request: ResponsesRequest, custom: frozenset[str], *, hosted: bool) -> ToolChoice | None:
    choice, parallel = request.tool_choice, request.parallel_tool_calls
    if choice is None and parallel is None:
        return None
    if isinstance(choice, NamedToolChoice) and hosted and choice.type not in ("function", "custom"):
        return ToolChoice("auto", None, parallel)  # a hosted tool, which the upstream runs from the body it gets
    if isinstance(choice, NamedToolChoice):
        names = {tool.name for tool, _, _ in request.callable_tools()}
        if choice.type not in ("function", "custom") or not choice.name:
            raise InvalidRequestError(
                f"The gateway takes tool_choice 'auto', 'none', 'required' or a function or custom tool by name, "
                f"not '{choice.type}'.",
                param="tool_choice",
                code="unsupported_parameter",
            )
        if choice.name not in names:
            raise InvalidRequestError(
                f"tool_choice names '{choice.name}', which is not in tools.", param="tool_choice.name"
            )
        return ToolChoice("tool", choice.name, parallel)
    if choice == "required" and not request.tools:
        raise InvalidRequestError("tool_choice 'required' needs at least one tool.", param="tool_choice")
    return ToolChoice(choice or "auto", None, parallel)
