"""Stored responses on `make run`'s gateway with the official openai SDK: two turns by previous_response_id, the
stored response read back and its input items, invisible to another key, and still there after a restart on the
same data directory."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import LocalGateway, start_gateway, stop_gateway
from tests.e2e.test_local_responses import new_key, sdk

pytestmark = pytest.mark.e2e


def test_two_turns_by_previous_response_id(local_gateway: LocalGateway) -> None:
    client = sdk(local_gateway)
    first = client.responses.create(model="echo", input="one two three")
    second = client.responses.create(model="echo", input="four five", previous_response_id=first.id)
    assert first.to_dict()["store"] is True and second.output_text == "four five"
    # Echo counts every word it reads: the first turn, its answer and the new input.
    assert second.usage is not None and second.usage.input_tokens == 3 + 3 + 2
    assert client.responses.retrieve(second.id).previous_response_id == first.id
    texts = [item.content[0].text for item in client.responses.input_items.list(second.id, order="asc").data]  # type: ignore[union-attr]
    assert texts == ["one two three", "one two three", "four five"]

    stranger = sdk(local_gateway, new_key(local_gateway)["key"])
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(second.id)
    with pytest.raises(openai.BadRequestError) as refused:
        stranger.responses.create(model="echo", input="hi", previous_response_id=second.id)
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "previous_response_not_found"
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_a_stored_response_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    first = start_gateway(demo_key=None, data_dir=data_dir)
    try:
        stored = sdk(first).responses.create(model="echo", input="kept across restarts")
    finally:
        assert stop_gateway(first) == 0
    second = start_gateway(demo_key=None, data_dir=data_dir)
    try:
        client = sdk(second)
        assert client.responses.retrieve(stored.id).output_text == "kept across restarts"
        following = client.responses.create(model="echo", input="and on", previous_response_id=stored.id)
        assert following.usage is not None and following.usage.input_tokens == 3 + 3 + 2
    finally:
        assert stop_gateway(second) == 0
