"""What every source yields: a record to land as received, or a rejected one with the reason."""

from __future__ import annotations

from dataclasses import dataclass


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
