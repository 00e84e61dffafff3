"""Per-source slots shared by every run that talks to the same Prefect API.

Each source has a global concurrency limit `census-source-<name>` with one slot. A run holds it
while the source's ingest tasks run (all its months, for a backfill), so a backfill started beside
the nightly run, or on another machine, queues for the service instead of opening a second
connection to it. The run takes it once per source, not once per task: each acquisition is a few
API calls, and on Prefect's default SQLite server one made as a task starts often meets a 503
(database busy) and waits about two seconds, which across a backfill's hundreds of months adds up.

Request pacing inside one ingest stays each client's job (arXiv's delay between requests, the Hub's
request budget and `Retry-After`, Papers With Code's per-minute cap): with one ingest per service at a
time, that pacing is the pacing across all runs, so arXiv's "one connection at a time, one request
every 3 seconds" and the Hub's per-5-minute quota hold however many runs are scheduled.

Prefect limits rather than a file lock: `warehouse.connection.writer_lock` covers one machine's
warehouse, but workers on two machines (or a test warehouse beside the real one) share the services'
quotas and not a file system; the Prefect API is what they do share. The limits are created when a
run starts if they are missing, and never overwritten (an operator may set one to 0 to pause a
source); they are taken with `strict=True`, so a limit that vanished fails the run loudly instead of
silently limiting nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

SLOTS_PER_SOURCE = 1
"""One connection per service at a time, as arXiv's terms ask; the other services get the same courtesy."""
SLOT_LEASE_SECONDS = 60.0
"""Prefect's shortest lease (the API refuses less than 60 s), renewed in the background at 75 % of
it while the ingest runs: a run killed with SIGKILL cannot release its slot, and the server's
repossessor, which looks for expired leases every 15 s, frees it 60 to 75 s later (the default
lease of 300 s would keep the next run of the source waiting five minutes)."""


class SourceBusy(RuntimeError):
    """Another run held the source's slot for longer than this run was willing to wait."""


def limit_name(source: str) -> str:
    return f"census-source-{source}"


def ensure_source_limits(sources: Iterable[str]) -> None:
    """Create each source's limit unless it exists; safe to call from several runs at once."""
    with get_client(sync_client=True) as client:
        for source in sources:
            name = limit_name(source)
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=SLOTS_PER_SOURCE)
                    )
                except ObjectAlreadyExists:
                    pass  # another run created it between our read and our create


@contextmanager
def source_slot(source: str, *, wait_seconds: float) -> Iterator[None]:
    """Hold the source's slot while the block runs; wait up to `wait_seconds` for it, then fail clearly.

    The slot's lease is renewed in the background for ingests longer than the lease; a renewal
    that fails once (the API blinked) does not kill an hour-long ingest.
    """
    name = limit_name(source)
    slot = ExitStack()
    try:
        slot.enter_context(
            concurrency(name, occupy=1, timeout_seconds=wait_seconds, strict=True, lease_duration=SLOT_LEASE_SECONDS,
                        raise_on_lease_renewal_failure=False)
        )
    except TimeoutError:
        raise SourceBusy(
            f"another census run has held {name} for more than {wait_seconds:.0f}s; "
            "try again when it has finished, or raise MODEL_CENSUS_LOCK_WAIT_SECONDS"
        ) from None
    with slot:
        yield
