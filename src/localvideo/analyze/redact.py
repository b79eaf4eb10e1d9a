"""Redaction before anything leaves the machine: secrets out of text, blur over their pixels.

``redact_text`` replaces each finding with ``[REDACTED:<kind>]``. Kinds, in the order they
are looked for (an earlier kind wins where two overlap):

    private_key   -----BEGIN ... PRIVATE KEY----- blocks (to END, or to the end of the text)
    jwt           three base64url parts, header and payload starting ``eyJ``
    api_key       sk-..., sk_live_..., AKIA/ASIA..., ghp_/gho_/ghs_/github_pat_..., xox?-...,
                  AIza..., ``Bearer <token>``, and a long high-entropy value after
                  key/token/secret/api_key ``=`` or ``:``
    password      the value after password/passwd/pwd/passphrase ``:`` or ``=``
    email         name@domain.tld
    card          13–19 digits, spaces or dashes allowed, passing the Luhn check
    phone         +country or grouped numbers with 7–15 digits (not dates, times, versions)

Recall over precision: OCR text is noisy and a missed secret costs more than a blurred word.
The finding's text is never kept, only its kind and span, so logs cannot leak it.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class Redaction:
    kind: str
    start: int      # span in the original text
    end: int


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group(0))
    # All-same digits ("0000 0000 0000 0000") pass Luhn but are placeholders, not cards.
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1


def _phone(m: re.Match[str]) -> bool:
    return 7 <= len(re.sub(r"\D", "", m.group(0))) <= 15


def _secret_value(m: re.Match[str]) -> bool:
    value = m.group("v")
    # Words like "refresh_token_expiry_seconds" are long but low in entropy and have no digits.
    return _entropy(value) >= 3.0 and any(c.isdigit() for c in value)


# (kind, pattern, check, group): ``group`` is the part replaced (0 = the whole match).
_Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None, str | int]
RULES: list[_Rule] = [
    ("private_key", re.compile(
        r"-----BEGIN[A-Z ]*PRIVATE KEY( BLOCK)?-----.*?(-----END[A-Z ]*PRIVATE KEY( BLOCK)?-----"
        r"|\Z)", re.S), None, 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
     None, 0),
    ("api_key", re.compile(
        r"\b(?:sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{16,}"
        r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}"
        r"|glpat-[A-Za-z0-9_-]{20,})"), None, 0),
    ("api_key", re.compile(r"(?i)\bBearer\s+(?P<v>[A-Za-z0-9._~+/=-]{20,})"), None, "v"),
    ("api_key", re.compile(
        r"(?i)\b[\w.-]*(?:api[_-]?key|apikey|token|secret|access[_-]?key|auth[_-]?key|"
        r"client[_-]?secret)[\w.-]*[\"']?\s*[:=]\s*[\"']?(?P<v>[A-Za-z0-9_./+=~-]{16,})"),
     _secret_value, "v"),
    ("password", re.compile(
        r"(?i)\b(?:password|passwd|pwd|passphrase)\b[\"']?\s*[:=]\s*[\"']?(?P<v>[^\s\"',;]+)"),
     None, "v"),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
     None, 0),
    ("card", re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d.-]?\d)"), _card, 0),
    ("phone", re.compile(
        r"(?<![\w+.-])(?<!\d[ .-])"
        r"(?:\+\d{7,14}"
        r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?)"
        r"(?![\w]|[ .-]\d|[:/])"), _phone, 0),
]


def find(text: str) -> list[Redaction]:
    """Non-overlapping findings, in text order."""
    taken: list[Redaction] = []
    for kind, pattern, check, group in RULES:
        for m in pattern.finditer(text):
            if check is not None and not check(m):
                continue
            start, end = m.span(group)
            if start == end or any(start < r.end and r.start < end for r in taken):
                continue
            taken.append(Redaction(kind, start, end))
    return sorted(taken, key=lambda r: r.start)


def redact_text(text: str) -> tuple[str, list[Redaction]]:
    """Replace every finding with ``[REDACTED:<kind>]``; spans refer to the input text."""
    found = find(text)
    out: list[str] = []
    pos = 0
    for r in found:
        out.append(text[pos:r.start])
        out.append(f"[REDACTED:{r.kind}]")
        pos = r.end
    out.append(text[pos:])
    return "".join(out), found


def _get(word: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in word:
            return word[n]
    raise KeyError(names[0])


def redact_boxes(words: Iterable[dict[str, Any]]) -> list[tuple[int, int, int, int]]:
    """Boxes ``(left, top, right, bottom)`` of the OCR words that hold redacted text.

    Words are dicts as the OCR step stores them: ``t`` (or ``text``) and ``x, y, w, h`` (or
    tesseract's ``left, top, width, height``). They are joined with spaces in order, so a
    secret split over several words (``4111 1111 1111 1111``) is found and every part boxed.
    """
    spans: list[tuple[int, int, tuple[int, int, int, int]]] = []
    parts: list[str] = []
    pos = 0
    for w in words:
        token = str(_get(w, "t", "text"))
        x, y = int(_get(w, "x", "left")), int(_get(w, "y", "top"))
        box = (x, y, x + int(_get(w, "w", "width")), y + int(_get(w, "h", "height")))
        spans.append((pos, pos + len(token), box))
        parts.append(token)
        pos += len(token) + 1
    found = find(" ".join(parts))
    return [box for start, end, box in spans
            if any(start < r.end and r.start < end for r in found)]


def blur_regions(image: bytes | Image.Image, boxes: Iterable[tuple[int, int, int, int]],
                 pad: int = 3) -> Image.Image:
    """A copy of ``image`` with each box made unreadable.

    Each box is blurred all the way down to its mean colour (a 1×1 box-filter resample): a
    Gaussian blur can be partly undone on text, a flat fill cannot, and the mean colour keeps
    the layout readable for the model.
    """
    img = Image.open(io.BytesIO(image)) if isinstance(image, bytes | bytearray) else image
    out = img.convert("RGB") if img.mode not in ("RGB", "RGBA", "L") else img.copy()
    for left, top, right, bottom in boxes:
        box = (max(0, left - pad), max(0, top - pad), min(out.width, right + pad),
               min(out.height, bottom + pad))
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        region = out.crop(box)
        out.paste(region.resize((1, 1), Image.Resampling.BOX).resize(region.size), box[:2])
    return out
