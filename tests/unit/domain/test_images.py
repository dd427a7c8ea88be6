"""Image dimensions from file headers, built here byte by byte to each format's specification."""

from __future__ import annotations

import struct

import pytest

from llm_gateway.domain.images import image_dimensions


def png(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height) + b"\x08\x02\0\0\0"
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\xf7\x00\x00"


def jpeg(width: int, height: int, frame: int = 0xC0) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    dqt = b"\xff\xdb" + struct.pack(">H", 5) + b"\0\0\0"
    sof = b"\xff" + bytes([frame]) + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\0"
    return b"\xff\xd8" + app0 + dqt + b"\xff" + sof


def webp(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width: int, height: int) -> bytes:
    # A 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
    return webp(b"VP8 ", b"\0\0\0" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height))


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return webp(b"VP8L", b"\x2f" + struct.pack("<I", bits))


def webp_extended(width: int, height: int) -> bytes:
    return webp(b"VP8X", b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


@pytest.mark.parametrize(
    ("data", "size"),
    [
        pytest.param(png(8000, 1), (8000, 1), id="png"),
        pytest.param(gif(640, 480), (640, 480), id="gif"),
        pytest.param(jpeg(1024, 768), (1024, 768), id="jpeg-baseline"),
        pytest.param(jpeg(9000, 50, frame=0xC2), (9000, 50), id="jpeg-progressive"),
        pytest.param(webp_lossy(800, 600), (800, 600), id="webp-lossy"),
        pytest.param(webp_lossless(16383, 2), (16383, 2), id="webp-lossless"),
        pytest.param(webp_extended(12000, 3), (12000, 3), id="webp-extended"),
    ],
)
def test_dimensions_are_read_from_the_header(data: bytes, size: tuple[int, int]) -> None:
    assert image_dimensions(data) == size


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x89PNG\r\n\x1a\n fake image bytes", id="png-without-ihdr"),
        pytest.param(png(10, 10)[:20], id="png-cut-short"),
        pytest.param(b"BM" + b"\0" * 40, id="bmp"),
        pytest.param(jpeg(10, 10)[:12], id="jpeg-cut-short"),
        pytest.param(webp(b"ALPH", b"\0" * 10), id="webp-unknown-chunk"),
    ],
)
def test_unreadable_headers_have_no_dimensions(data: bytes) -> None:
    assert image_dimensions(data) is None
