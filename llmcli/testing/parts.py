"""Image and file content parts, checked as OpenAI's Chat Completions checks them.

``image_url`` parts carry an ``http(s)`` URL or a ``data:image/{png,jpeg,gif,webp};
base64,...`` URL whose bytes really are that format, at most 20 MB; ``file`` parts
carry ``file_data`` (``data:application/pdf;base64,...`` of a real PDF) with a
``filename``, or a ``file_id``. Anything else is answered with OpenAI's 400.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .validation import RequestError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 32 * 1024 * 1024
_IMAGE_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",),
                "gif": (b"GIF87a", b"GIF89a"), "webp": (b"RIFF",)}
_FORMATS = "['png', 'jpeg', 'gif', 'webp']"


def check_parts(messages: list[dict[str, Any]]) -> int:
    """Validate every image and file part; return how many there were."""
    seen = 0
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = part.get("type")
            where = f"messages[{i}].content[{j}]"
            if kind == "image_url":
                _check_image(part.get("image_url"), where)
                seen += 1
            elif kind == "file":
                _check_file(part.get("file"), where)
                seen += 1
            elif kind != "text":
                raise RequestError(400, f"Invalid value: '{kind}'. Supported values are: "
                                        "'text', 'image_url', 'input_audio', 'refusal', "
                                        "'audio', and 'file'.", f"{where}.type", "invalid_value")
    return seen


def _decode(url: str, prefix: str, where: str, code: str) -> bytes:
    try:
        return base64.b64decode(url[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "Invalid base64 data in the data URL.", where, code) from None


def _check_image(image: Any, where: str) -> None:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise RequestError(400, f"Missing required parameter: '{where}.image_url.url'.",
                           f"{where}.image_url.url", "missing_required_parameter")
    if url.startswith(("http://", "https://")):
        return
    fmt = url[len("data:image/"):].split(";", 1)[0] if url.startswith("data:image/") else ""
    if fmt not in _IMAGE_MAGIC or ";base64," not in url:
        raise RequestError(400, "Invalid image URL: expected an http(s) URL or a base64 "
                                f"data URL of one of {_FORMATS}.", f"{where}.image_url.url",
                           "invalid_image_url")
    data = _decode(url, url.split(",", 1)[0] + ",", f"{where}.image_url.url", "invalid_image_format")
    webp_ok = fmt != "webp" or data[8:12] == b"WEBP"
    if not data.startswith(_IMAGE_MAGIC[fmt]) or not webp_ok:
        raise RequestError(400, "You uploaded an unsupported image. Please make sure your image "
                                f"has of one the following formats: {_FORMATS}.",
                           f"{where}.image_url.url", "invalid_image_format")
    if len(data) > MAX_IMAGE_BYTES:
        raise RequestError(400, "Image is too large: the limit is 20 MB.",
                           f"{where}.image_url.url", "image_too_large")
    detail = image.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise RequestError(400, f"Invalid value: '{detail}'. Supported values are: 'auto', "
                                "'low', and 'high'.", f"{where}.image_url.detail", "invalid_value")


def _check_file(file: Any, where: str) -> None:
    if not isinstance(file, dict) or not (file.get("file_data") or file.get("file_id")):
        raise RequestError(400, f"Missing required parameter: '{where}.file.file_data' or "
                                f"'{where}.file.file_id'.", f"{where}.file",
                           "missing_required_parameter")
    data_url = file.get("file_data")
    if data_url is None:
        return
    prefix = "data:application/pdf;base64,"
    if not isinstance(data_url, str) or not data_url.startswith(prefix):
        raise RequestError(400, "Invalid file data: expected a base64 data URL of a PDF "
                                "(data:application/pdf;base64,...).", f"{where}.file.file_data",
                           "invalid_value")
    if not isinstance(file.get("filename"), str):
        raise RequestError(400, f"Missing required parameter: '{where}.file.filename'.",
                           f"{where}.file.filename", "missing_required_parameter")
    data = _decode(data_url, prefix, f"{where}.file.file_data", "invalid_value")
    if not data.startswith(b"%PDF-"):
        raise RequestError(400, "Invalid file data: the file is not a PDF.",
                           f"{where}.file.file_data", "invalid_value")
    if len(data) > MAX_FILE_BYTES:
        raise RequestError(400, "File is too large: the limit is 32 MB.",
                           f"{where}.file.file_data", "file_too_large")
