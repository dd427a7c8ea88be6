"""Images and documents as Converse blocks, within Converse's limits on their formats, sizes and names."""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from llm_gateway.domain.conversation import DocumentBlock, ImageBlock
from llm_gateway.domain.images import image_dimensions

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime.literals import DocumentFormatType, ImageFormatType
    from mypy_boto3_bedrock_runtime.type_defs import (
        ContentBlockTypeDef,
    )
from llm_gateway.providers.bedrock.errors import refused

# Converse's limits on images in one request.
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html
MAX_IMAGES = 20


MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB


MAX_IMAGE_SIDE_PIXELS = 8000


_IMAGE_FORMATS: dict[str, ImageFormatType] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
_DOCUMENT_FORMATS: dict[str, DocumentFormatType] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}


# A document name may hold letters, digits, single spaces, hyphens, parentheses and square brackets.
_NOT_IN_DOCUMENT_NAME = re.compile(r"[^A-Za-z0-9 \-()\[\]]+")


def _base64_bytes(data: str, path: str, what: str) -> bytes:
    try:
        # Base64 wrapped over several lines is common; any other stray character is an error.
        decoded = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise refused(f"The {what} does not hold valid base64 data.", path, f"invalid_{what.split(maxsplit=1)[0]}")
    return decoded


def image_block(block: ImageBlock) -> ContentBlockTypeDef:
    path = block.path
    media_type, data = block.media_type, block.base64
    if block.url is not None:
        scheme = block.url.split(":", 1)[0].lower()
        if scheme in {"http", "https"}:
            raise refused(
                "Bedrock models only take inline images and the gateway does not fetch image URLs; "
                "send the image as a data URL (data:image/png;base64,...).",
                path,
                "image_url_not_supported",
            )
        if scheme != "data":
            raise refused(
                "An image_url must be a data URL such as data:image/png;base64,...", path, "invalid_image_url"
            )
        header, comma, data = block.url[len("data:") :].partition(",")
        media_type, *attributes = header.split(";")
        if not comma or "base64" not in {attribute.strip().lower() for attribute in attributes}:
            raise refused(
                "The image data URL must be base64-encoded: data:image/png;base64,...", path, "invalid_image_url"
            )
    image_format = _IMAGE_FORMATS.get((media_type or "").strip().lower())
    if image_format is None:
        raise refused(
            f"Unsupported image type '{media_type or 'none'}'; Bedrock takes png, jpeg, gif and webp images.",
            path,
            "invalid_image_url",
        )
    image = _base64_bytes(data or "", path, "image data URL")
    if len(image) > MAX_IMAGE_BYTES:
        raise refused(
            f"The image is {len(image)} bytes; Bedrock takes images of at most 3.75 MB ({MAX_IMAGE_BYTES} bytes).",
            path,
            "image_too_large",
        )
    # An image whose header the gateway cannot read is left for Bedrock to judge.
    dimensions = image_dimensions(image)
    if dimensions is not None and max(dimensions) > MAX_IMAGE_SIDE_PIXELS:
        raise refused(
            f"The image is {dimensions[0]}x{dimensions[1]} pixels; Bedrock takes images of at most "
            f"{MAX_IMAGE_SIDE_PIXELS} pixels on each side.",
            path,
            "image_too_large",
        )
    return {"image": {"format": image_format, "source": {"bytes": image}}}


def document_block(block: DocumentBlock) -> ContentBlockTypeDef:
    """A document block; Converse needs a name of its allowed characters, so a missing or odd one is made so."""
    name = " ".join(_NOT_IN_DOCUMENT_NAME.sub(" ", block.name or "").split()) or "document"
    if block.text is not None:
        return {"document": {"format": "txt", "name": name, "source": {"bytes": block.text.encode("utf-8")}}}
    document_format = _DOCUMENT_FORMATS.get((block.media_type or "").lower())
    if document_format is None or block.base64 is None:
        raise refused(
            f"Bedrock takes inline documents of these types: {', '.join(sorted(_DOCUMENT_FORMATS))}; "
            f"this one is '{block.media_type or 'unknown'}'" + (" by URL" if block.url else "") + ".",
            block.path,
            "unsupported_document",
        )
    data = _base64_bytes(block.base64, block.path, "document data")
    return {"document": {"format": document_format, "name": name[:200], "source": {"bytes": data}}}
