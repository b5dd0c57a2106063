"""Text that came from a submission, made safe for where it goes.

Student folder names, notebook contents and failure messages reach the instructor's terminal
(through rich, which reads `[...]` as markup and passes escape sequences through), log files,
HTML pages and a CSV file that spreadsheets open. Control characters (escape sequences, bidi
overrides, carriage returns) are replaced, length is capped, and markup is escaped where it
would be read.
"""

import unicodedata

from rich.markup import escape
from rich.text import Text

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain(text: str, limit: int | None = 200, keep_lines: bool = False) -> str:
    """Every control and format character replaced (newlines and tabs kept when asked), and at
    most `limit` characters."""
    keep = {"\n", "\t"} if keep_lines else set()
    cleaned = "".join(ch if ch in keep or unicodedata.category(ch)[0] not in ("C", "Z") or ch == " " else REPLACEMENT
                      for ch in text)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit] + " …"
    return cleaned


def console(text: str, limit: int | None = 200) -> str:
    """For an f-string rich prints: plain, with markup escaped."""
    return escape(plain(text, limit))


def cell(text: str, limit: int | None = 200) -> Text:
    """For a rich table cell: plain text that rich never parses as markup."""
    return Text(plain(text, limit))


def spreadsheet(value):
    """A CSV field no spreadsheet runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
