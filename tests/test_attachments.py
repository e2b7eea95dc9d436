"""--attach: detection by bytes, limits and errors before sending, the parts sent (the
test server validates them), conversations that keep references, batch lines."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from llmcli.core import attachments as att

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8
PDF = b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n"
FILES = {"a.png": (PNG, "image/png"), "photo.dat": (JPEG, "image/jpeg"),
         "b.gif": (GIF, "image/gif"), "c.webp": (WEBP, "image/webp"),
         "doc.bin": (PDF, "application/pdf")}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, (data, _) in FILES.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.md").write_text("# Notes\nbuy milk\n", encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02\xff" * 10)
    return tmp_path


def test_types_come_from_the_bytes_not_the_name(files):
    for name, (_, mime) in FILES.items():
        assert att.load(str(files / name)).mime == mime
    assert att.sniff("héllo".encode()) == "text/plain"
    assert att.sniff(b"\xff\xfe\x00bad") is None


def test_each_kind_becomes_its_canonical_part(files):
    png = att.to_part(att.load(str(files / "a.png")))
    assert png == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    pdf = att.to_part(att.load(str(files / "doc.bin")))
    assert pdf["type"] == "file" and pdf["file"]["filename"] == "doc.bin"
    assert pdf["file"]["file_data"].startswith("data:application/pdf;base64,")
    text = att.to_part(att.load(str(files / "notes.md")))
    assert text == {"type": "text", "text": '<file name="notes.md">\n# Notes\nbuy milk\n\n</file>'}
    url = att.to_part(att.load("https://example.com/x.png"))
    assert url == {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}
    stdin = att.load("-", io.BytesIO(GIF))
    assert stdin.name == "stdin" and stdin.mime == "image/gif"
    assert att.user_content("hi", []) == "hi"
    assert [p["type"] for p in att.user_content("hi", [stdin])] == ["text", "image_url"]


def test_errors_say_what_and_which_file(files):
    cases = {str(files / "blob.bin"): "unsupported type", str(files / "none.png"): "No such file",
             str(files): "it is a folder"}
    for spec, words in cases.items():
        with pytest.raises(att.AttachmentError, match=words):
            att.load(spec)
    with pytest.raises(att.AttachmentError, match="over the 16 bytes limit for image"):
        att.load(str(files / "a.png"), limits={**att.LIMITS["default"], "image": 16})
    with pytest.raises(att.AttachmentError, match="limit of one request"):
        att.load_all([str(files / "a.png")] * 3, limits={**att.LIMITS["default"], "total": 50})
    with pytest.raises(att.AttachmentError, match="only once"):
        att.load_all(["-", "-"], io.BytesIO(b"x"))


def test_references_round_trip_and_a_changed_file_is_refused(files):
    refs: att.Refs = {}
    photo = att.load(str(files / "a.png"))
    content = att.user_content("look", [photo])
    att.register(content, [photo], refs)
    messages = [{"role": "user", "content": content}]
    kept = att.collapse(messages, refs)
    assert "base64" not in json.dumps(kept)
    assert kept[0]["content"][1]["attachment"]["sha256"] == photo.sha256
    again: att.Refs = {}
    assert att.expand(kept, again) == messages and len(again) == 1
    (files / "a.png").write_bytes(PNG + b"changed")
    with pytest.raises(att.AttachmentError, match="changed since"):
        att.expand(kept, {})


def sent_parts(server, marker: str) -> list[dict]:
    bodies = [r["body"] for r in server.stats()["requests"] if marker in json.dumps(r["body"])]
    assert bodies, f"no request with {marker!r} reached the server"
    return bodies[-1]["messages"][-1]["content"]


def test_chat_attaches_every_type_and_the_server_accepts_them(cli, server, files):
    args = [a for name in [*FILES, "notes.md"] for a in ("-a", str(files / name))]
    done = cli("chat", *args, "-a", "https://example.com/cat.png", "attach-e2e-1")
    assert done.returncode == 0, done.stderr
    assert "buy milk" in done.stdout     # the text file was inlined, and echoed back
    parts = sent_parts(server, "attach-e2e-1")
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url", "image_url",
                                          "image_url", "file", "text", "image_url"]
    assert parts[-1]["image_url"]["url"] == "https://example.com/cat.png"


def test_stdin_can_be_the_attachment(cli, server, files):
    done = cli("stream", "-a", "-", "attach-e2e-stdin", input="piped text body")
    assert done.returncode == 0, done.stderr
    assert sent_parts(server, "attach-e2e-stdin")[1]["text"] == '<file name="stdin">\npiped text body\n</file>'


def test_bad_attachments_fail_before_anything_is_sent(cli, server, files):
    before = server.stats()["total_requests"]
    for spec, words in ((files / "blob.bin", "unsupported type"), (files / "no.png", "No such file")):
        done = cli("chat", "-a", str(spec), "hi")
        assert done.returncode == 2 and words in done.stderr and done.stdout == ""
    assert server.stats()["total_requests"] == before


def test_the_server_refuses_parts_openai_refuses(cli, server):
    import httpx

    from .conftest import API_KEY

    def post(part):
        body = {"model": "test-model", "messages": [{"role": "user", "content": [part]}]}
        return httpx.post(server.url("/v1/chat/completions"), json=body,
                          headers={"authorization": f"Bearer {API_KEY}"})
    fake_png = "data:image/png;base64," + base64.b64encode(JPEG).decode()
    assert post({"type": "image_url", "image_url": {"url": fake_png}}).json()["error"]["code"] == "invalid_image_format"
    not_pdf = "data:application/pdf;base64," + base64.b64encode(b"hello").decode()
    assert post({"type": "file", "file": {"filename": "x.pdf", "file_data": not_pdf}}).status_code == 400
    assert post({"type": "image_url", "image_url": {"url": "ftp://x"}}).status_code == 400
    good = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert post({"type": "image_url", "image_url": {"url": good, "detail": "low"}}).status_code == 200


def test_a_conversation_keeps_attachments_by_reference(cli, server, files):
    conv = files / "conv.json"
    first = cli("chat", "--conversation", str(conv), "-a", str(files / "a.png"), "conv-att-1")
    assert first.returncode == 0, first.stderr
    saved = conv.read_text()
    assert "base64" not in saved and json.loads(saved)[0]["content"][1]["type"] == "attachment"
    second = cli("chat", "--conversation", str(conv), "conv-att-2")
    assert second.returncode == 0, second.stderr
    body = [r["body"] for r in server.stats()["requests"] if "conv-att-2" in json.dumps(r["body"])][-1]
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "base64" not in conv.read_text() and len(json.loads(conv.read_text())) == 4
    (files / "a.png").write_bytes(PNG + b"!")
    third = cli("chat", "--conversation", str(conv), "conv-att-3")
    assert third.returncode == 2 and "changed since" in third.stderr


def test_batch_lines_carry_attachments(cli, server, files, tmp_path):
    lines = [{"id": "img", "prompt": "batch-att-1", "attachments": [str(files / "a.png"), str(files / "doc.bin")]},
             {"id": "bad", "prompt": "x", "attachments": [str(files / "blob.bin")]},
             {"id": "only", "attachments": [str(files / "notes.md")]}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = cli("batch", str(src), "-q")
    assert done.returncode == 7, done.stderr
    records = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert records["img"]["status"] == "ok" and records["only"]["status"] == "ok"
    assert "unsupported type" in records["bad"]["error"]["message"]
    assert records["bad"]["error"]["type"] == "invalid_input"
    assert [p["type"] for p in sent_parts(server, "batch-att-1")] == ["text", "image_url", "file"]


def test_interactive_attach_goes_with_the_next_message_and_is_saved_by_reference(api_env, server, files):
    from .conftest import ROOT
    from .pty_helper import Terminal, llmcli_argv, terminal_env

    conv = files / "session.json"
    env = terminal_env(api_env, LLMCLI_HISTORY=str(files / "history"))
    term = Terminal(llmcli_argv("chat", "-i", "--conversation", str(conv)), env, cwd=str(ROOT))
    try:
        term.expect("> ")
        term.send(f"/attach {files / 'a.png'}\r")
        term.expect("attached a.png (image)")
        term.send("/attach /no/such.png\r")
        term.expect("No such file")
        term.send("interactive-att-1\r")
        term.expect("echo: interactive-att-1")
        term.expect("> ")
        term.send("interactive-att-2\r")
        term.expect("echo: interactive-att-2")
        term.expect("> ")
    finally:
        term.close()
    bodies = [r["body"] for r in server.stats()["requests"] if "interactive-att-1" in json.dumps(r["body"])]
    first = bodies[-2]["messages"][-1]["content"]
    assert [p["type"] for p in first] == ["text", "image_url"]
    assert bodies[-1]["messages"][-3]["content"] == first      # kept in the conversation
    second = [r["body"] for r in server.stats()["requests"] if "interactive-att-2" in json.dumps(r["body"])][-1]
    assert second["messages"][-1]["content"] == "interactive-att-2"     # only the next message
    saved = json.loads(conv.read_text())
    assert saved[0]["content"][1]["type"] == "attachment" and "base64" not in conv.read_text()


class _EndlessStdin:
    """`yes | llmcli chat -a - ...`: a stream that never ends."""

    def read(self, n: int = -1) -> bytes:
        assert n >= 0, "read to the end of an endless stream"
        return b"y\n" * (n // 2) + b"y" * (n % 2)


def test_an_endless_attachment_is_refused_at_the_limit_not_read_into_memory(cli):
    from llmcli.core.attachments import AttachmentError, load

    small = {"image": 1000, "pdf": 2000, "text": 500, "total": 3000}
    with pytest.raises(AttachmentError, match="over the 2 KB limit"):
        load("-", _EndlessStdin(), limits=small)
    done = cli("chat", "-a", "/dev/zero", "hi")
    assert done.returncode == 2 and "over the 32.0 MB limit" in done.stderr


def test_prompt_dash_and_attach_dash_is_one_clear_usage_error(cli):
    """Both read stdin: the error says so (it blamed a --no-stdin nobody gave)."""
    done = cli("chat", "-a", "-", "-", input="data\n")
    assert done.returncode == 2 and "both read stdin" in done.stderr
    assert "--no-stdin" not in done.stderr
