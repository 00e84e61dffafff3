"""What every source yields: a record to land as received, or a rejected one with the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

NOT_TEXT = re.compile("[\ud800-\udfff]")
"""Code points that are not Unicode text: bytes that were not UTF-8 (decoded with errors='surrogateescape'
they survive as U+DC80..U+DCFF) and halves of surrogate pairs (a JSON `\\ud800` escape). DuckDB stores
neither, and a record holding one would fail its whole page on insert."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One source record: its primary key and its payload as JSON text, unchanged from the source."""

    key: str
    payload: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not be used, kept with its raw text so nobody has to refetch it to see why."""

    key: str | None
    raw_text: str
    reason: str


class SourceError(Exception):
    """The source as a whole failed (unreachable, refused, answered nonsense); other sources go on.

    `url` is the address that failed, without credentials, so the CLI can print one clear line.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class SourceUnavailable(SourceError):
    """The service is gone or changed shape (HTML instead of JSON, a redirect away, 404/410 on a listing).

    Recorded as `unavailable: <reason>` rather than as a failure: nothing wrong is loaded and
    the rest of the run goes on.
    """


def invalid_utf8(text: str) -> int:
    """How many code points of `text` are not text (see `NOT_TEXT`): a record with any is rejected, not landed."""
    return len(NOT_TEXT.findall(text))


def storable(text: str) -> str:
    """`text` with each code point that is not text as U+FFFD, so a reject's raw text can be kept."""
    return NOT_TEXT.sub("\ufffd", text)
