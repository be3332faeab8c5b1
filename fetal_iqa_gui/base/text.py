"""Wording shared by the CLI and the window, and text from files made safe for other programs."""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable, Sequence

# A cell a spreadsheet takes for a formula (OWASP's CSV injection list); numbers such as -0.5 are not
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# C0 and C1 controls, DEL, the marks that reverse text (a name can look like another), lone surrogates
# (the undecodable bytes of a file name, which a terminal's encoding cannot even print)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 image', '2 images' (`plural` for nouns that do not take an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def shown(text: object) -> str:
    """`text` (a path, a name, a message naming them) as a terminal can show it: every control
    character escaped (\\x1b, \\n, ...), so that a file's name cannot move the cursor, clear the
    screen or forge a line of output; undecodable bytes of a name shown as \\xNN."""
    def escape(match: re.Match) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else match.group().encode(
            "unicode_escape", "backslashreplace").decode("ascii")
    return _UNPRINTABLE.sub(escape, str(text))


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as the text it is: one that begins as a formula does
    gets a leading ' (OWASP's advice); numbers, even negative ones, stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """A CSV file's bytes (UTF-8, one line a row), every cell made safe by `spreadsheet_cell`."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for row in [columns, *rows]:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return text.getvalue().encode()
