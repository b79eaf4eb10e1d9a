"""Redaction: true positives, look-alikes that must pass, word boxes and real blurring."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageStat

from localvideo.analyze.redact import blur_regions, luhn_ok, redact_boxes, redact_text

SECRETS = [
    ("write to jane.doe+ci@example.co.uk today", "jane.doe+ci@example.co.uk", "email"),
    ("card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111", "card"),
    ("amex 3782-822463-10005 ok", "3782-822463-10005", "card"),
    ("visa 4012888888881881", "4012888888881881", "card"),
    ("call +1 (415) 555-2671 now", "+1 (415) 555-2671", "phone"),
    ("office 020 7946 0958", "020 7946 0958", "phone"),
    ("whatsapp +447911123456", "+447911123456", "phone"),
    ("export OPENAI_API_KEY=sk-proj-abcDEF1234567890xyzXYZ", "sk-proj-abcDEF1234567890xyzXYZ",
     "api_key"),
    ("key sk-ant-api03-Zx9_Qw8-Er7Ty6Ui5Op4As3Df2", "sk-ant-api03-Zx9_Qw8-Er7Ty6Ui5Op4As3Df2",
     "api_key"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "api_key"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
     "api_key"),
    ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl", "api_key"),
    ("Authorization: Bearer abc123DEF456ghi789JKL0", "abc123DEF456ghi789JKL0", "api_key"),
    ('"client_secret": "8f3a9c2e71b04d5f9e6a1b2c"', "8f3a9c2e71b04d5f9e6a1b2c", "api_key"),
    ("password: hunter2!", "hunter2!", "password"),
    ("DB passwd=Tr0ub4dor&3 host=db", "Tr0ub4dor&3", "password"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "jwt"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXk", "private_key"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (cut off by the window)",
     "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "private_key"),
]

HARMLESS = [
    "random 16 digits 4111111111111112 fail Luhn",
    "grouped 1234 5678 9012 3456 fails Luhn too",
    "placeholder 0000 0000 0000 0000",
    "at 14:03:12 on 2026-11-25, version 1.2.3, ip 192.168.100.200",
    "Build #42 failed in 1234 ms, PID 56789, port 8080",
    "refresh_token_expiry_seconds = 3600",
    "the tokenizer: WordLevel, secret santa list",
    "sk-learn is not a key, nor is skip-connections",
    "see https://example.com/docs/a-b-c and user@ alone",
]


@pytest.mark.parametrize(("text", "secret", "kind"), SECRETS)
def test_secret_is_replaced(text, secret, kind):
    clean, found = redact_text(text)
    assert secret not in clean
    assert f"[REDACTED:{kind}]" in clean
    assert any(r.kind == kind for r in found)


@pytest.mark.parametrize("text", HARMLESS)
def test_look_alikes_are_left_alone(text):
    assert redact_text(text) == (text, [])


def test_spans_point_into_the_original_and_text_around_survives():
    text = "mail a@b.io, then call +1 415 555 2671; pwd: s3cret done"
    clean, found = redact_text(text)
    assert [text[r.start:r.end] for r in found] == ["a@b.io", "+1 415 555 2671", "s3cret"]
    assert clean == ("mail [REDACTED:email], then call [REDACTED:phone]; "
                     "pwd: [REDACTED:password] done")


def test_luhn():
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_redact_boxes_maps_findings_to_every_word_they_cover():
    words = [{"t": t, "x": 10 + 60 * i, "y": 5, "w": 50, "h": 12}
             for i, t in enumerate("pay with 4111 1111 1111 1111 thanks".split())]
    assert redact_boxes(words) == [(130, 5, 180, 17), (190, 5, 240, 17), (250, 5, 300, 17),
                                   (310, 5, 360, 17)]
    tess = [{"text": "mail", "left": 0, "top": 0, "width": 30, "height": 10},
            {"text": "x@y.org", "left": 40, "top": 0, "width": 60, "height": 10}]
    assert redact_boxes(tess) == [(40, 0, 100, 10)]
    assert redact_boxes([]) == []


def _render(text: str) -> Image.Image:
    font = ImageFont.truetype("DejaVuSans.ttf", 28)
    img = Image.new("RGB", (760, 60), "white")
    ImageDraw.Draw(img).text((10, 12), text, fill="black", font=font)
    return img


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")
def test_blur_makes_the_secret_unreadable_to_real_ocr_and_keeps_the_rest():
    import pytesseract

    img = _render("write to jane.doe@example.com today")
    data = pytesseract.image_to_data(img, output_type=pytesseract.Output.DICT)
    words = [{"text": t, "left": data["left"][i], "top": data["top"][i],
              "width": data["width"][i], "height": data["height"][i]}
             for i, t in enumerate(data["text"]) if t.strip()]
    assert "jane.doe@example.com" in " ".join(w["text"] for w in words)
    boxes = redact_boxes(words)
    assert len(boxes) == 1

    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = blur_regions(buf.getvalue(), boxes)
    after = pytesseract.image_to_string(out)
    assert "jane" not in after and "example" not in after and "@" not in after
    assert "write" in after and "today" in after
    left, top, right, bottom = boxes[0]
    assert ImageStat.Stat(out.crop((left, top, right, bottom)).convert("L")).stddev[0] < 1.0
    assert img.crop((0, 0, left - 5, 60)).tobytes() == out.crop((0, 0, left - 5, 60)).tobytes()


def test_blur_clamps_boxes_outside_the_image():
    img = Image.new("RGB", (20, 20), "red")
    out = blur_regions(img, [(-10, -10, 5, 5), (30, 30, 40, 40)])
    assert out.size == (20, 20) and out is not img


def test_a_whole_request_text_without_secrets_is_unchanged():
    from reason.helpers import TEXT

    text = ("Local date: 2026-11-25\nWindow: 14:00:00–14:05:00\n" + TEXT
            + "[2026-11-25 14:05:59] xterm — ~/src/app: Ran 112 tests in 3.021s (pid 48213)\n")
    assert redact_text(text) == (text, [])
