"""Attachments: files, stdin and URLs turned into canonical message parts.

What a file is comes from its first bytes, never its name: PNG, JPEG, WebP and GIF
become ``image_url`` parts (a ``data:`` URL), PDF a ``file`` part (``file_data``),
UTF-8 text a ``text`` part that carries the file's name; anything else is refused.
An ``http(s)://`` URL is passed by reference as an ``image_url`` part: the provider
fetches it. Every check (readable, known type, under the size limit) happens before
anything is sent.

Conversation files keep an attachment as a reference (:func:`to_ref`): its path, size
and SHA-256, not its base64. :func:`from_ref` reads the file again when the
conversation is continued, and refuses one that changed.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from .errors import LLMCLIError

MB = 1024 * 1024
# Per-attachment limits, from the providers' documentation (docs/usage.md#attachments):
# OpenAI: 20 MB per image (Chat Completions "image inputs"), 32 MB per PDF ("file
# inputs"); Anthropic: 5 MB per image, 32 MB per PDF request; Gemini: 20 MB per
# inline request. Text has no documented byte limit; 10 MB is far past any context.
LIMITS: dict[str, dict[str, int]] = {
    "default": {"image": 20 * MB, "pdf": 32 * MB, "text": 10 * MB, "total": 50 * MB},
    "anthropic": {"image": 5 * MB, "pdf": 32 * MB, "text": 10 * MB, "total": 32 * MB},
    "gemini": {"image": 20 * MB, "pdf": 20 * MB, "text": 10 * MB, "total": 20 * MB},
}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))


class AttachmentError(LLMCLIError):
    """An attachment that cannot be sent: unreadable, of an unknown type, too big."""

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


@dataclass
class Attachment:
    """One attachment, read and checked. ``data`` is ``None`` for a URL."""

    source: str               # the path as given, "-" for stdin, or the URL
    kind: str                 # "image", "pdf", "text" or "url"
    mime: str
    data: Optional[bytes] = None
    sha256: Optional[str] = None

    @property
    def name(self) -> str:
        """The file's name as the model sees it."""
        return "stdin" if self.source == "-" else os.path.basename(self.source) or self.source


def sniff(data: bytes) -> Optional[str]:
    """The MIME type of an image or a PDF from its first bytes; ``text/plain`` for
    UTF-8 text; ``None`` for anything else."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" in data[:8192]:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def is_url(spec: str) -> bool:
    """Whether an ``--attach`` value is a URL to pass by reference."""
    return spec.startswith(("http://", "https://"))


def load(spec: str, stdin: Optional[BinaryIO] = None, *, limits: Optional[dict[str, int]] = None,
         base_dir: Optional[str] = None) -> Attachment:
    """Read and check one ``--attach`` value: a path, ``-`` (stdin) or a URL."""
    if is_url(spec):
        return Attachment(spec, "url", "")
    limits = limits or LIMITS["default"]
    cap = max(limits["image"], limits["pdf"], limits["text"])
    data = _read(spec, stdin, base_dir, cap + 1)
    if len(data) > cap:     # /dev/zero, `yes |`: never read without end into memory
        raise AttachmentError(f"cannot attach {spec}: over the {_size(cap)} limit of any "
                              "attachment", source=spec)
    mime = sniff(data)
    if mime is None:
        raise AttachmentError(f"cannot attach {spec}: unsupported type (attachments are "
                              "PNG, JPEG, WebP or GIF images, PDFs, or UTF-8 text)", source=spec)
    kind = "text" if mime == "text/plain" else "pdf" if mime == "application/pdf" else "image"
    limit = limits[kind]
    if len(data) > limit:
        raise AttachmentError(f"cannot attach {spec}: {_size(len(data))}, over the "
                              f"{_size(limit)} limit for {kind} attachments", source=spec)
    return Attachment(spec, kind, mime, data, hashlib.sha256(data).hexdigest())


def load_all(specs: list[str], stdin: Optional[BinaryIO] = None, *,
             limits: Optional[dict[str, int]] = None,
             base_dir: Optional[str] = None) -> list[Attachment]:
    """Every attachment of one message, and their total under the request limit."""
    if specs.count("-") > 1:
        raise AttachmentError("stdin can be attached only once (-a -)", source="-")
    found = [load(spec, stdin, limits=limits, base_dir=base_dir) for spec in specs]
    total = sum(len(a.data or b"") for a in found)
    cap = (limits or LIMITS["default"])["total"]
    if total > cap:
        raise AttachmentError(f"attachments total {_size(total)}, over the {_size(cap)} "
                              "limit of one request")
    return found


def _read(spec: str, stdin: Optional[BinaryIO], base_dir: Optional[str], most: int) -> bytes:
    """Up to ``most`` bytes of the attachment."""
    if spec == "-":
        if stdin is None:
            raise AttachmentError("-a -: there is no stdin to read", source=spec)
        return _read_up_to(stdin, most)
    path = os.path.join(base_dir, spec) if base_dir and not os.path.isabs(spec) else spec
    try:
        with open(path, "rb") as f:
            return _read_up_to(f, most)
    except IsADirectoryError:
        raise AttachmentError(f"cannot attach {spec}: it is a folder", source=spec) from None
    except OSError as exc:
        raise AttachmentError(f"cannot attach {spec}: {exc.strerror or exc}", source=spec) from None


def _read_up_to(f: BinaryIO, most: int) -> bytes:
    """``read(most)`` until end of file or ``most`` bytes: a pipe gives less per call."""
    chunks, got = [], 0
    while got < most:
        chunk = f.read(min(most - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def to_part(att: Attachment) -> dict[str, Any]:
    """The canonical (Chat Completions) content part of an attachment."""
    if att.kind == "url":
        return {"type": "image_url", "image_url": {"url": att.source}}
    assert att.data is not None
    if att.kind == "text":
        text = att.data.decode("utf-8")
        return {"type": "text", "text": f'<file name="{att.name}">\n{text}\n</file>'}
    url = f"data:{att.mime};base64,{base64.b64encode(att.data).decode('ascii')}"
    if att.kind == "pdf":
        return {"type": "file", "file": {"filename": att.name, "file_data": url}}
    return {"type": "image_url", "image_url": {"url": url}}


def user_content(text: Optional[str], attachments: list[Attachment]) -> Any:
    """A user message's content: the text alone, or the text then one part per
    attachment."""
    if not attachments:
        return text
    parts = [{"type": "text", "text": text}] if text else []
    return parts + [to_part(a) for a in attachments]


def to_ref(att: Attachment) -> dict[str, Any]:
    """What a conversation file keeps of an attachment: a reference, not its bytes.
    A path is made absolute so that the conversation can be continued from anywhere."""
    source = att.source if att.kind == "url" or att.source == "-" else os.path.abspath(att.source)
    return {"type": "attachment", "attachment": {"source": source, "kind": att.kind,
                                                  "mime": att.mime, "sha256": att.sha256,
                                                  "bytes": len(att.data or b"")}}


def from_ref(part: dict[str, Any], limits: Optional[dict[str, int]] = None) -> dict[str, Any]:
    """The content part a reference stands for, read again from its file; raises
    :class:`AttachmentError` when the file is gone or has changed."""
    ref: dict[str, Any] = part["attachment"] if isinstance(part.get("attachment"), dict) else {}
    source = ref.get("source")
    if not isinstance(source, str) or not source:
        raise AttachmentError("a conversation attachment has no source")
    if source == "-":   # stdin cannot be read again: say so in the conversation itself
        return {"type": "text", "text": f"[an attachment read from stdin, sha256 {ref.get('sha256')}, "
                                        "is not kept in the conversation]"}
    att = load(source, limits=limits)
    if ref.get("sha256") and att.sha256 != ref["sha256"]:
        raise AttachmentError(f"{source} changed since it was attached to this conversation "
                              "(its SHA-256 differs)", source=source)
    return to_part(att)


Refs = dict[int, dict[str, Any]]   # id() of a content part -> the reference it stands for


def expand(messages: list[dict[str, Any]], refs: Refs,
           limits: Optional[dict[str, int]] = None) -> list[dict[str, Any]]:
    """``messages`` from a conversation file with each reference read back into its
    part; ``refs`` learns which parts they are, so that :func:`collapse` can put the
    references back when the conversation is saved again."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(_is_ref(p) for p in content):
            parts = []
            for part in content:
                if _is_ref(part):
                    real = from_ref(part, limits)
                    refs[id(real)] = part
                    part = real
                parts.append(part)
            message = {**message, "content": parts}
        out.append(message)
    return out


def collapse(messages: list[dict[str, Any]], refs: Refs) -> list[dict[str, Any]]:
    """``messages`` with every attachment part replaced by its reference."""
    if not refs:
        return messages
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(id(p) in refs for p in content):
            message = {**message, "content": [refs.get(id(p), p) for p in content]}
        out.append(message)
    return out


def register(parts: Any, attachments: list[Attachment], refs: Refs) -> None:
    """Remember which parts of a user content came from ``attachments`` (the parts
    :func:`user_content` made, after its optional leading text part)."""
    if not isinstance(parts, list) or not attachments:
        return
    for part, att in zip(parts[len(parts) - len(attachments):], attachments):
        refs[id(part)] = to_ref(att)


def _is_ref(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "attachment"
