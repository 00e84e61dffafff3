"""A host that cannot be reached at all fails the source at once: `make run` offline ends in seconds.

`.invalid` never resolves (RFC 6761), with or without a network, so these run the real clients
against a real resolver failure rather than a patched socket.
"""

from __future__ import annotations

import socket

import pytest
import requests

from flows.ingest import LoadCounts, SourceOutcome
from flows.pipeline import IngestFailed, is_transient
from sources import polite_http
from sources.arxiv import ArxivClient
from sources.huggingface import HubListing
from sources.records import SourceError

NOWHERE = "http://model-census-test.invalid"


class CountingSession(requests.Session):
    """A real session that counts the GETs it was asked for."""

    calls = 0

    def get(self, *args, **kwargs):  # type: ignore[override]
        self.calls += 1
        return super().get(*args, **kwargs)


def test_requests_source_fails_on_the_first_attempt_with_the_reason() -> None:
    session = CountingSession()
    with pytest.raises(SourceError, match="host name does not resolve") as raised:
        polite_http.get(session, f"{NOWHERE}/ai_models.zip", attempts=4, backoff_seconds=5.0)
    assert session.calls == 1
    assert raised.value.url == f"{NOWHERE}/ai_models.zip"


def test_arxiv_client_does_not_back_off_for_an_unresolvable_host() -> None:
    client = ArxivClient(f"{NOWHERE}/api/query", delay_seconds=5.0, backoff_seconds=5.0)
    with pytest.raises(SourceError, match="host name does not resolve"):
        client.query(search_query="cat:cs.CL")
    assert client.requests == 1


def test_hub_listing_does_not_spend_its_budget_on_an_unresolvable_host() -> None:
    listing = HubListing(NOWHERE, backoff_seconds=5.0)
    with pytest.raises(SourceError, match="host name does not resolve"):
        listing.fetch_page(listing.first_url())
    assert listing.requests == 1


def test_the_task_is_not_retried_for_an_unresolvable_host_but_is_for_a_refused_connection() -> None:
    def failure(url: str) -> IngestFailed:
        try:
            requests.get(url, timeout=5)
        except requests.ConnectionError as exc:
            try:
                raise IngestFailed(SourceOutcome("epoch", "failed", LoadCounts(), error=str(exc))) from exc
            except IngestFailed as wrapped:
                return wrapped
        raise AssertionError(f"{url} answered")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert not is_transient(failure(f"{NOWHERE}/ai_models.zip"))
    assert is_transient(failure(f"http://127.0.0.1:{closed_port}/ai_models.zip")), "refused: a service restarting"
