"""Pure parts of the client: the shape check of 200 replies, key redaction, error-body messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llmrouter_collect.client import (
    MESSAGE_CAP,
    MalformedReply,
    Redactor,
    _error_message,
    parse_reply,
    server_text,
)

GOOD_CHOICE = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}


def reply(**fields: Any) -> dict[str, Any]:
    return {"choices": [GOOD_CHOICE], "usage": {"prompt_tokens": 3, "completion_tokens": 1}, **fields}


@pytest.mark.parametrize(
    ("body", "endpoint", "expected"),
    [
        ([GOOD_CHOICE], "chat", "the body is a list, not an object"),
        ("ok", "chat", "the body is a string, not an object"),
        ({"id": "x"}, "chat", "no choices"),
        (reply(choices=None), "chat", "no choices"),
        (reply(choices="hi"), "chat", "choices is a string, not a list"),
        (reply(choices={"0": GOOD_CHOICE}), "chat", "choices is an object, not a list"),
        (reply(choices=[]), "chat", "choices is empty"),
        (reply(choices=["hi", "there"]), "chat", "choices[0] is a string, not an object"),
        (reply(choices=[GOOD_CHOICE, None]), "chat", "choices[1] is null, not an object"),
        (reply(choices=[{"index": 0, "message": None}]), "chat", "choices[0].message is null"),
        (reply(choices=[{"index": 0}]), "chat", "choices[0].message is null"),
        (reply(choices=[{"message": "hi"}]), "chat", "choices[0].message is a string, not an object"),
        (reply(choices=[{"message": {"content": ["a"]}}]), "chat", "choices[0].message.content is a list"),
        (reply(choices=[{"message": {"content": 3}}]), "chat", "choices[0].message.content is a number"),
        (
            reply(choices=[{"message": {"content": "a", "reasoning_content": {}}}]),
            "chat",
            "choices[0].message.reasoning_content is an object",
        ),
        (reply(choices=[{"message": {"content": "a"}, "finish_reason": 1}]), "chat", "choices[0].finish_reason"),
        (reply(choices=[{"text": None}]), "completions", "choices[0].text is null"),
        (reply(choices=[{"text": 5}]), "completions", "choices[0].text is a number, not a string"),
        (reply(choices=[GOOD_CHOICE]), "completions", "choices[0].text is null"),
        (reply(usage=[1, 2]), "chat", "usage is a list, not an object"),
        (reply(usage="many"), "chat", "usage is a string, not an object"),
        (reply(usage={"prompt_tokens": "12"}), "chat", "usage.prompt_tokens is a string, not a whole number"),
        (reply(usage={"completion_tokens": -1}), "chat", "usage.completion_tokens is -1"),
        (reply(usage={"completion_tokens": 1.5}), "chat", "usage.completion_tokens is 1.5"),
        (reply(usage={"prompt_tokens": True}), "chat", "usage.prompt_tokens is a boolean"),
        (
            reply(usage={"completion_tokens_details": 7}),
            "chat",
            "usage.completion_tokens_details is a number, not an object",
        ),
        (
            reply(usage={"completion_tokens_details": {"reasoning_tokens": {}}}),
            "chat",
            "usage.completion_tokens_details.reasoning_tokens is an object",
        ),
    ],
)
def test_malformed_shapes_say_what_is_wrong(body: Any, endpoint: str, expected: str) -> None:
    with pytest.raises(MalformedReply) as caught:
        parse_reply(body, endpoint, 0.1)
    assert expected in str(caught.value)


def test_good_replies_and_lenient_parts() -> None:
    body = {
        "choices": [
            {"index": 1, "message": {"content": None, "reasoning": "r1"}, "finish_reason": None},
            {"index": 0, "message": {"content": "zero", "reasoning_content": "r0"}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 5.0, "completion_tokens": 7, "completion_tokens_details": None},
    }
    got = parse_reply(body, "chat", 0.5)
    assert [(s.text, s.reasoning, s.finish_reason) for s in got.samples] == [
        ("zero", "r0", "length"),
        ("", "r1", None),
    ]
    assert (got.prompt_tokens, got.completion_tokens, got.reasoning_tokens) == (5, 7, 0)
    no_usage = parse_reply({"choices": [{"text": "t", "index": "x"}], "usage": None}, "completions", 0.1)
    assert no_usage.samples[0].text == "t" and no_usage.prompt_tokens == 0


SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        f"invalid key Bearer {SECRET}",
        f"invalid key {SECRET}",
        f'{{"authorization": "bearer {SECRET}"}}',
        f"key {SECRET[:14]}… is not valid",  # truncated by the server
        f"key ...{SECRET[-10:]} is not valid",
        f"keys {SECRET}{SECRET} and {SECRET}",
    ],
)
def test_redactor_removes_the_key_and_its_fragments(text: str) -> None:
    redact = Redactor(SECRET)
    cleaned = redact(text)
    assert "***" in cleaned
    for start in range(len(SECRET) - 7):
        assert SECRET[start : start + 8] not in cleaned, cleaned


def test_redactor_masks_any_bearer_token_and_keeps_other_text() -> None:
    redact = Redactor(None)
    assert redact("invalid key Bearer someone-elses-key.") == "invalid key Bearer ***"
    assert redact("Authorization: bearer\tabc, then more") == "Authorization: bearer\t***, then more"
    assert redact("The model `m` does not exist.") == "The model `m` does not exist."


def test_short_key_is_redacted_only_where_it_stands_alone() -> None:
    redact = Redactor("k9")
    assert redact("invalid key k9") == "invalid key ***"
    assert redact("key 'k9' refused") == "key '***' refused"
    assert redact("k9x and ak9 and 1k9") == "k9x and ak9 and 1k9"


def test_redactor_from_authorization_header() -> None:
    assert Redactor.from_headers(httpx.Headers({"Authorization": f"Bearer {SECRET}"})).secret == SECRET
    assert Redactor.from_headers(httpx.Headers({"Authorization": "Token abc123xyz"})).secret == "abc123xyz"
    assert Redactor.from_headers(httpx.Headers({"Authorization": "rawkey123"})).secret == "rawkey123"
    assert Redactor.from_headers(httpx.Headers({})).secret is None


def test_server_text_is_one_printable_capped_line_redacted_before_the_cut() -> None:
    redact = Redactor(SECRET)
    html = "<html>\r\n<title>502</title>\x1b[31m\n</html>"
    assert server_text(html, redact) == "<html> <title>502</title> [31m </html>"
    long = "x" * (MESSAGE_CAP - 10) + SECRET + "y" * 100  # the cap falls inside the key
    cut = server_text(long, redact)
    assert len(cut) <= MESSAGE_CAP and cut.endswith("…") and SECRET[:8] not in cut


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"error": {"message": "bad Bearer sk-1234567890", "type": "x"}}', "bad Bearer ***"),
        (b'{"detail": [{"loc": ["body"], "msg": "field required"}]}', '[{"loc":["body"],"msg":"field required"}]'),
        (b'{"error": "quota exceeded"}', "quota exceeded"),
        (b"", "(empty body)"),
        (b"\xff\xfe not utf-8 \xc3", "\ufffd\ufffd not utf-8 \ufffd"),
        (b'{"error": {"message": "caf\xe9"}}', '{"error": {"message": "caf\ufffd"}}'),
        (b"x" * 100_000, "x" * (MESSAGE_CAP - 1) + "…"),
    ],
)
def test_error_message(raw: bytes, expected: str) -> None:
    assert _error_message(raw, Redactor(None)) == expected
