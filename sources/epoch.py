"""Epoch AI's "Data on AI Models": a zip of CSVs (or one CSV), downloaded and read row by row.

Epoch publishes full snapshots, not deltas, so each run reads the whole file; a conditional GET
(`If-None-Match` / `If-Modified-Since`) makes an unchanged snapshot cost one request and no parsing.
Rows are keyed by file and model name, since the same model appears in several of the files
(all, notable, frontier, large-scale) with different columns, and which files hold it matters.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import urlsplit

import requests

from sources import polite_http
from sources.records import RawRecord, Rejected, SourceError, SourceUnavailable, is_text

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://epoch.ai/data/ai_models.zip"
PRIMARY_KEY = "<file>#<Model>"
KEY_SEPARATOR = "#"

MODEL_COLUMNS = ("Model", "System")
"""Names Epoch has used for the model-name column, newest first."""
DATE_COLUMNS = ("Publication date",)
"""Names Epoch has used for the publication-date column."""

MAX_CELL_CHARS = 65_536
"""Epoch's longest real cell (an abstract) is under 8,000 characters; far longer means a broken row."""
EARLIEST_DATE = date(1940, 1, 1)
"""Before any AI model (Epoch's oldest, Theseus, is from 1950): an earlier date is a typo or a placeholder."""
FUTURE_SLACK = timedelta(days=1)
"""A date past tomorrow (UTC) is not a publication yet; one day covers zones ahead of UTC."""
CHUNK_BYTES = 1 << 20
SNIFF_BYTES = 512
HTML_START = re.compile(rb"\s*(<!doctype html|<html|<head|<body|<!--)", re.IGNORECASE)
DOWNLOAD_ATTEMPTS = 3
"""A download that broke off is started again twice: the file is loaded whole or not at all."""
CUT_SHORT = "the file ends inside this record: truncated download?"
"""The reason a CSV's last record carries when the file stops inside it (`ends_cut_short`)."""


@dataclass
class Download:
    """The outcome of one fetch: either not modified, or a spooled file to read records from."""

    not_modified: bool
    etag: str | None = None
    last_modified: str | None = None
    bytes_read: int = 0
    body: IO[bytes] | None = field(default=None, repr=False)


def fetch(
    url: str,
    *,
    session: requests.Session,
    timeout: float = polite_http.TIMEOUT_SECONDS,
    etag: str | None = None,
    last_modified: str | None = None,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff_seconds: float = 1.0,
) -> Download:
    """Download the snapshot to a temporary file, streaming, unless the server says it has not changed.

    The file spools to disk past 16 MB, so the whole zip is never held in memory. A download that
    breaks off mid-body (reset, stalled past the timeout, shorter than announced) is started again:
    that is as transient as a 503, only later. `polite_http` retries the status line itself.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    problem = "no attempt made"
    for attempt in range(1, attempts + 1):
        response = polite_http.get(
            session, url, headers=headers, timeout=timeout, stream=True, backoff_seconds=backoff_seconds
        )
        with response:
            if response.status_code == 304:
                # Not modified: the snapshot we loaded last time is still current.
                return Download(not_modified=True, etag=etag, last_modified=last_modified)
            body = tempfile.SpooledTemporaryFile(max_size=16 << 20)
            size = 0
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    body.write(chunk)
                    size += len(chunk)
            except requests.RequestException as exc:
                body.close()
                problem = f"download broke off after {size:,} bytes ({type(exc).__name__})"
            else:
                body.seek(0)
                return Download(
                    not_modified=False,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    bytes_read=size,
                    body=body,
                )
        if attempt < attempts:
            delay = polite_http.backoff_delay(backoff_seconds, attempt)
            logger.warning("%s from %s, retry %d/%d in %.1fs", problem, polite_http.redact(url), attempt, attempts - 1, delay)
            time.sleep(delay)
    # Worded like polite_http's exhausted retries, so the flow treats it as transient too.
    raise SourceError(f"{problem} after {attempts} attempts", url=polite_http.redact(url))


def read_records(body: IO[bytes], url: str) -> Iterator[RawRecord | Rejected]:
    """Every row of every CSV in the download, as a record or a rejection with its reason."""
    if zipfile.is_zipfile(body):
        body.seek(0)
        with zipfile.ZipFile(body) as archive:
            members = sorted(name for name in archive.namelist() if name.lower().endswith(".csv"))
            if not members:
                raise SourceError("the zip holds no CSV file", url=polite_http.redact(url))
            for member in members:
                with archive.open(member) as raw:
                    yield from read_csv(raw, PurePosixPath(member).name)
        return
    body.seek(0)
    start = body.read(SNIFF_BYTES)
    if not start.strip():
        raise SourceError("answered an empty body where the snapshot should be", url=polite_http.redact(url))
    if start[:2] == b"PK":
        raise SourceError("the zip is truncated or corrupt", url=polite_http.redact(url))
    if HTML_START.match(start):
        # A web page where the data was: the download moved or sits behind a login or an error page.
        raise SourceUnavailable("answered an HTML page, not a zip or CSV: the download has moved", url=polite_http.redact(url))
    body.seek(0)
    yield from read_csv(body, PurePosixPath(urlsplit(url).path).name or "epoch.csv")


def ends_cut_short(last: RawRecord | Rejected | None) -> bool:
    """Whether a snapshot's last record says the file stopped inside it: a download cut short that no
    length told (a plain CSV sent without `Content-Length`). Its rows before the cut are good; the file is not whole."""
    return isinstance(last, Rejected) and last.reason.endswith(f"({CUT_SHORT})")


def read_csv(raw: IO[bytes], file_name: str) -> Iterator[RawRecord | Rejected]:
    """Rows of one CSV as JSON objects keyed by the header, exactly the cells received.

    Columns are never taken by position: Epoch renames and reorders them between releases, so the
    payload keeps the header's names and staging maps them with aliases.
    """
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _RecordLines(text)
    reader = csv.reader(lines, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        return
    model_column = _first_present(header, MODEL_COLUMNS)
    date_column = _first_present(header, DATE_COLUMNS)
    if model_column is None:
        raise SourceError(f"{file_name} has no model-name column (looked for {', '.join(MODEL_COLUMNS)})", url=file_name)
    seen: set[str] = set()
    while True:
        lines.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Rejected(None, lines.record_text(), f"{file_name}: unreadable CSV record ({exc})")
            continue
        raw_text = lines.record_text()
        if not any(cells):
            continue
        reason = _problem(cells, header, raw_text, lines.at_eof(), date_column, model_column)
        model = cells[header.index(model_column)].strip() if len(cells) == len(header) else None
        key = f"{file_name}{KEY_SEPARATOR}{model}" if model else None
        if reason is None and model in seen:
            reason = f"duplicate {model_column} {model!r}; the first row is kept"
        if reason:
            yield Rejected(key, raw_text, f"{file_name}: {reason}")
            continue
        seen.add(model)
        yield RawRecord(key, json.dumps(dict(zip(header, cells)), ensure_ascii=False))


def _problem(
    cells: list[str],
    header: list[str],
    raw_text: str,
    at_eof: bool,
    date_column: str | None,
    model_column: str,
) -> str | None:
    """Why a parsed row cannot be used, or None when it can."""
    if len(cells) != len(header):
        truncated = f" ({CUT_SHORT})" if at_eof else ""
        return f"{len(cells)} cells where the header has {len(header)}{truncated}"
    if not is_text(raw_text):
        return "invalid UTF-8"
    row = dict(zip(header, cells))
    if not row[model_column].strip():
        return f"empty {model_column}"
    if (longest := max((len(cell) for cell in cells), default=0)) > MAX_CELL_CHARS:
        return f"a cell of {longest:,} characters (limit {MAX_CELL_CHARS:,})"
    if date_column and (value := row[date_column].strip()):
        try:
            published = date.fromisoformat(value)
        except ValueError:
            return f"unparseable {date_column} {value[:40]!r} (expected YYYY-MM-DD)"
        latest = datetime.now(timezone.utc).date() + FUTURE_SLACK
        if not EARLIEST_DATE <= published <= latest:
            return f"implausible {date_column} {value} (expected {EARLIEST_DATE} to {latest})"
    return None


def _first_present(header: list[str], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in header), None)


class _RecordLines:
    """Feeds lines to `csv.reader` and remembers those of the current record, for rejects' raw text."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._lines: list[str] = []
        self._eof = False

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        line = self._text.readline()
        if not line:
            self._eof = True
            raise StopIteration
        self._lines.append(line)
        return line

    def start_record(self) -> None:
        self._lines = []

    def record_text(self) -> str:
        return "".join(self._lines)

    def at_eof(self) -> bool:
        """Whether the last record ran to the end of the file without its line ending."""
        return self._eof or bool(self._lines and not self._lines[-1].endswith("\n"))
