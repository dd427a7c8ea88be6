"""Attribution: the session, end user and tags of a request, bounded; a day's events summed into a breakdown; report
groupings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm_gateway.domain.attribution import (
    MAX_LENGTH,
    allowed_tag_names,
    breakdown,
    end_user,
    session_id,
    tags,
)
from llm_gateway.domain.stores import UsageEvent
from llm_gateway.domain.usage_report import needs_events, parse_groups
from llm_gateway.errors import InvalidRequestError

ALLOWED = ("env", "project")


def test_session_and_end_user_are_read_and_bounded() -> None:
    assert session_id([("x-claude-code-session-id", "s" * 500)]) == "s" * MAX_LENGTH
    assert session_id([("anthropic-version", "2023-06-01")]) is None
    assert end_user({"safety_identifier": "a", "user": "b"}) == "a"
    assert end_user({"user": "b"}) == "b"
    assert end_user({"metadata": {"user_id": "c"}}) == "c"
    assert end_user({"user": 7, "metadata": "x"}) is None


def test_tags_are_name_value_pairs_sorted_by_name() -> None:
    assert tags([("x-gateway-tags", " project=alpha , env=dev ")], ALLOWED) == (("env", "dev"), ("project", "alpha"))
    assert tags([("x-gateway-tags", "  ")], ALLOWED) == ()
    assert tags([], ALLOWED) == ()
    assert tags([("x-gateway-tags", "project=a:b/c@d+e_f.g-h")], ALLOWED) == (("project", "a:b/c@d+e_f.g-h"),)


@pytest.mark.parametrize(
    "header",
    ["colour=red", "project", "=x", "project=", "project=a,project=b", "project=" + "x" * 65, "project=a b",
     "project=a,env=b,project1=c,x=1,y=2,z=3", "project=" + "x" * 60 + ",env=" + "y" * 64],
)  # fmt: skip
def test_bad_tags_are_refused_naming_the_allowed_names(header: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        tags([("x-gateway-tags", header)], ALLOWED)
    assert refused.value.param == "X-Gateway-Tags" and refused.value.code == "invalid_tags"
    assert "allowed tag names: env, project" in refused.value.message


def test_a_gateway_without_tag_names_takes_no_tags() -> None:
    with pytest.raises(InvalidRequestError, match="this gateway takes no tags"):
        tags([("x-gateway-tags", "project=alpha")], ())


def test_the_operators_tag_names() -> None:
    assert allowed_tag_names(" project, env,,project ") == ("env", "project")
    assert allowed_tag_names("") == ()
    with pytest.raises(ValueError, match="tag name"):
        allowed_tag_names("cost centre")


def test_a_breakdown_sums_events_sharing_every_attribute() -> None:
    at = datetime(2026, 11, 22, 9, tzinfo=UTC)

    def event(request_id: str, **fields: object) -> UsageEvent:
        values: dict[str, object] = {"model": "echo", "prompt_tokens": 10, "completion_tokens": 5, "cost_micro_usd": 7}
        values.update(fields)
        return UsageEvent(request_id, at, "key_a", "acme", "standard", status=200, **values)  # type: ignore[arg-type]

    groups = breakdown(
        [
            event("1", session_id="s"),
            event("2", session_id="s", failed=True, cached_tokens=4),
            event("3", model="claude"),
        ]
    )
    assert [(g.model, g.session_id, g.figures) for g in groups] == [
        ("claude", None, (1, 0, 10, 0, 0, 5, 7)),
        ("echo", "s", (2, 1, 20, 4, 0, 10, 14)),
    ]
    assert breakdown([]) == []


def test_report_groupings() -> None:
    assert parse_groups("team, model") == ("team", "model")
    assert parse_groups("tag,day", ALLOWED) == ("tag:env", "tag:project", "day")
    assert parse_groups("tag:cost-centre") == ("tag:cost-centre",)
    assert needs_events(("day", "session")) and needs_events(("tag:env",)) and not needs_events(("day", "team"))
    for bad in ("", "colour", "tag:", "day,colour"):
        with pytest.raises(InvalidRequestError) as refused:
            parse_groups(bad)
        assert refused.value.param == "group_by"
