"""Images on Converse: data URLs sent as bytes in each format, images beyond Converse's limits refused before any
call, remote URLs refused with what to send instead."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from botocore.stub import Stubber

from llm_gateway.domain.ports import Deadline
from llm_gateway.errors import ProviderRequestError
from llm_gateway.providers.bedrock.provider import BedrockProvider
from tests.unit.providers.bedrock.conftest import ClientFactorySpy
from tests.unit.providers.bedrock.converse_bodies import (
    PIXEL,
    PIXEL_B64,
    TARGET,
    chat,
    converse_response,
    expected_request,
    image_message,
    text,
    user,
)


@pytest.mark.parametrize(
    ("media_type", "image_format"),
    [
        pytest.param("image/png", "png", id="png"),
        pytest.param("image/jpeg", "jpeg", id="jpeg"),
        pytest.param("image/jpg", "jpeg", id="jpg-alias"),
        pytest.param("image/gif", "gif", id="gif"),
        pytest.param("image/webp", "webp", id="webp"),
        pytest.param("IMAGE/PNG", "png", id="media-type-is-case-insensitive"),
    ],
)
def test_data_url_images_are_sent_as_bytes(
    provider: BedrockProvider, stubber: Stubber, media_type: str, image_format: str
) -> None:
    # Line-wrapped base64, as some encoders produce it, decodes to the same bytes.
    wrapped = "\n".join(PIXEL_B64[i : i + 8] for i in range(0, len(PIXEL_B64), 8))
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{wrapped}", "detail": "low"}},
    ]
    image = {"image": {"format": image_format, "source": {"bytes": PIXEL}}}
    stubber.add_response(
        "converse", converse_response(text("a cat")), expected_request([user(text("What is this?"), image)])
    )
    completion = provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))
    assert completion.text == "a cat"


def png(width: int, height: int, padding: int = 0) -> bytes:
    """A PNG header (signature and IHDR) of the given size, padded to reach a byte size."""
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * (4 + padding)


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def image_part(image: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url(image)}}


@pytest.mark.parametrize(
    ("images", "param", "code"),
    [
        pytest.param([png(9000, 100)], "messages[0].content[1]", "image_too_large", id="too-wide"),
        pytest.param([png(100, 8001)], "messages[0].content[1]", "image_too_large", id="too-tall"),
        pytest.param([png(10, 10, padding=3_932_161)], "messages[0].content[1]", "image_too_large", id="over-3.75-mb"),
        pytest.param([png(10, 10)] * 21, "messages", "too_many_images", id="more-than-20"),
    ],
)
def test_images_beyond_converses_limits_are_refused_before_any_call(
    provider: BedrockProvider, factory: ClientFactorySpy, images: list[bytes], param: str, code: str
) -> None:
    content = [{"type": "text", "text": "What are these?"}, *(image_part(image) for image in images)]
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert factory.calls == []


def test_images_at_converses_limits_are_sent(provider: BedrockProvider, stubber: Stubber) -> None:
    images = [png(8000, 8000), *[png(1, 1)] * 19]
    content = [{"type": "text", "text": "What are these?"}, *(image_part(image) for image in images)]
    blocks = [{"image": {"format": "png", "source": {"bytes": image}}} for image in images]
    stubber.add_response(
        "converse", converse_response(text("pixels")), expected_request([user(text("What are these?"), *blocks)])
    )
    provider.complete(chat(messages=[{"role": "user", "content": content}]), TARGET, Deadline.after(10))


def test_remote_image_url_message_tells_the_caller_what_to_send(provider: BedrockProvider) -> None:
    with pytest.raises(ProviderRequestError) as caught:
        provider.complete(chat(messages=image_message("https://example.com/cat.png")), TARGET, Deadline.after(10))
    assert caught.value.code == "image_url_not_supported"
    assert "does not fetch" in caught.value.message
    assert "data:image/png;base64," in caught.value.message
