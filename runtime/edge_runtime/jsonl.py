"""Reading `edge-runtime predict --jsonl` input: one JSON object with a string "text" per line.

Lines are read as bytes and handed on in batches of whatever has arrived, so over a pipe each line
is answered as soon as its writer sends it, not after 31 more. Each line is decoded and parsed on
its own: a line that is not UTF-8, not JSON, nested past the parser's stack, too long, or without
a string "text" is reported by its number and the others go on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from .errors import InputError
from .texts import check_text

READ_SIZE = 1 << 16
_SURROGATE = re.compile("[\ud800-\udfff]")


def line_batches(stream: BinaryIO, max_line_bytes: int) -> Iterator[list[tuple[int, bytes | None]]]:
    """Batches of (line number, line without its newline); None for a line past max_line_bytes,
    which is skipped to its end without being held in memory. Line numbers count every line."""
    read = getattr(stream, "read1", stream.read)  # read1: what is there now, waiting only if nothing is
    pending = bytearray()
    number = 0
    too_long = False
    while chunk := read(READ_SIZE):
        batch = []
        start = 0
        pending += chunk
        while (end := pending.find(b"\n", start)) != -1:
            number += 1
            line = None if too_long or end - start > max_line_bytes else bytes(pending[start:end])
            batch.append((number, line))
            too_long = False
            start = end + 1
        del pending[:start]
        if len(pending) > max_line_bytes:
            too_long = True
            pending.clear()
        if batch:
            yield batch
    if pending or too_long:
        yield [(number + 1, None if too_long else bytes(pending))]


def parse_line(raw: bytes | None, number: int, max_chars: int, max_line_bytes: int) -> tuple[str | None, str | None]:
    """(text, None) for a good line, (None, problem) for a bad one, (None, None) for a blank one."""
    if raw is None:
        return None, f"longer than {max_line_bytes >> 20} MiB"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start + 1})"
    if number == 1:
        line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
    if not line.strip():
        return None, None
    try:
        obj = json.loads(line)
    except RecursionError:
        return None, "not valid JSON (nested too deeply)"
    except ValueError as exc:  # JSONDecodeError, ints past Python's digit limit
        return None, f"not valid JSON ({getattr(exc, 'msg', str(exc))[:80]})"
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return None, 'expected an object with a string field "text"'
    try:
        check_text(obj["text"], max_chars)
    except InputError as exc:
        return None, str(exc)
    return obj["text"], None  # as given: the result echoes it, the pipeline cleans it


def dumps(obj) -> str:
    """One JSON line, UTF-8 throughout; a lone surrogate (which UTF-8 cannot hold) stays escaped."""
    text = json.dumps(obj, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
