"""GET with the retry rules every `requests`-based source shares.

Transient failures (429, 5xx, connection errors, timeouts, bodies cut off) are retried with
exponential backoff and jitter, honouring `Retry-After`; any other 4xx fails at once with status,
URL and reason, because asking again will not change the answer. Redirects are followed only
within the same host: a source that suddenly sends us elsewhere has moved or retired, and what the
other site says is not its data.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from sources.records import SourceError, SourceUnavailable

logger = logging.getLogger(__name__)

RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
"""No answer, a late one, or one cut off mid-body (a reset, fewer bytes than announced): ask again."""
MAX_REDIRECTS = 5
TIMEOUT_SECONDS = 30.0
"""One request's bound when the caller sets none; the pipeline passes `MODEL_CENSUS_HTTP_TIMEOUT_SECONDS`."""
UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})
MAX_RETRY_AFTER_SECONDS = 300.0


def redact(url: str) -> str:
    """The URL without user info or query string, safe to print: queries may carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def unreachable_reason(exc: BaseException | None) -> str | None:
    """Why the host cannot be reached at all (its name does not resolve, no route to it), else None.

    An offline machine or a mistyped URL: asking again within the run changes nothing, so the source
    fails at once and `make run` without a network ends in seconds, not after minutes of backoff.
    A refused or reset connection is different (a service restarting) and stays retried.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror):
            return f"the host name does not resolve ({exc.strerror or exc}): offline, or a wrong URL"
        if isinstance(exc, OSError) and exc.errno in UNREACHABLE_ERRNOS:
            return f"no route to the host ({exc.strerror}): offline, or a wrong URL"
        exc = exc.__cause__ or exc.__context__
    return None


def retry_after_seconds(response: requests.Response, default: float) -> float:
    """Seconds the server asked us to wait (`Retry-After` as seconds or an HTTP date), else `default`."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def get(
    session: requests.Session,
    url: str,
    *,
    params: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    stream: bool = False,
) -> requests.Response:
    """The response to a GET, after retrying transient failures; raises `SourceError` otherwise.

    A 304 is returned as is, so callers can use conditional requests.
    """
    last_problem = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            response = _get_following_same_host(session, url, params, headers, timeout, stream)
        except SourceUnavailable:
            raise
        except TRANSIENT_ERRORS as exc:
            if (unreachable := unreachable_reason(exc)) is not None:
                raise SourceError(unreachable, url=redact(url)) from exc
            last_problem = f"{type(exc).__name__}: {_short(exc)}"
        else:
            if response.status_code < 400:
                return response
            if response.status_code not in RETRIABLE_STATUS:
                raise SourceError(
                    f"HTTP {response.status_code} {response.reason} from {redact(response.url)}",
                    url=redact(url),
                )
            last_problem = f"HTTP {response.status_code} {response.reason}"
            delay = retry_after_seconds(response, backoff_delay(backoff_seconds, attempt))
            response.close()
            if attempt < attempts:
                logger.warning("%s from %s, retry %d/%d in %.1fs", last_problem, redact(url), attempt, attempts - 1, delay)
                time.sleep(delay)
            continue
        if attempt < attempts:
            delay = backoff_delay(backoff_seconds, attempt)
            logger.warning("%s from %s, retry %d/%d in %.1fs", last_problem, redact(url), attempt, attempts - 1, delay)
            time.sleep(delay)
    raise SourceError(f"{last_problem} after {attempts} attempts", url=redact(url))


def _get_following_same_host(
    session: requests.Session,
    url: str,
    params: dict[str, object] | None,
    headers: dict[str, str] | None,
    timeout: float,
    stream: bool,
) -> requests.Response:
    """One GET that follows up to five redirects on the same host and refuses any other."""
    origin = urlsplit(url).netloc
    current, current_params = url, params
    for _ in range(MAX_REDIRECTS + 1):
        response = session.get(
            current, params=current_params, headers=headers, timeout=timeout, stream=stream, allow_redirects=False
        )
        if not response.is_redirect:
            return response
        target = urljoin(response.url, response.headers.get("Location", ""))
        response.close()
        if urlsplit(target).netloc != origin:
            raise SourceUnavailable(
                f"redirected to another site ({redact(target)}): the source has moved or retired", url=redact(url)
            )
        current, current_params = target, None
    raise SourceError(f"more than {MAX_REDIRECTS} redirects", url=redact(url))


def backoff_delay(base: float, attempt: int) -> float:
    """Exponential backoff with full jitter, so parallel clients do not retry in lockstep."""
    return base * (2 ** (attempt - 1)) * (0.5 + random.random())


def _short(exc: Exception) -> str:
    """The first line of an exception message, capped: urllib3 nests whole reprs in there."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
