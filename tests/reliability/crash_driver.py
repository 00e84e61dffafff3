"""One Epoch run of the pipeline without Prefect, for the crash tests to SIGKILL at random points.

It makes the calls `flows.pipeline.run_pipeline` makes for one source, in the same order and on the
same functions (writer lock, work database, ingest with its bookkeeping, rebuild, publish), leaving
out only Prefect's task machinery: the promises under test (the warehouse survives a kill, the
published copy is whole) are the warehouse's, and a Prefect server per run would make twenty runs
take minutes. Settings come from `MODEL_CENSUS_*` as in a real run. It prints each phase as it
starts, so the test can tell where a kill landed.
"""

from __future__ import annotations

import sys
import uuid

from flows.ingest import IngestRun, Window
from flows.ingest_epoch import ingest_epoch
from flows.settings import Settings
from transforms.rebuild import rebuild
from warehouse import runs
from warehouse.connection import open_work_db, writer_lock
from warehouse.publish import publish


def phase(name: str) -> None:
    sys.stdout.write(name + "\n")
    sys.stdout.flush()


def main() -> int:
    settings = Settings()
    run_id = str(uuid.uuid4())
    with writer_lock(settings.work_db, wait_seconds=settings.lock_wait_seconds):
        phase("ingest")
        con = open_work_db(settings.work_db)
        try:
            run = IngestRun(con, "epoch", run_id, on_progress=lambda counts, percent: phase("page"))
            runs.start_run(con, run_id, "epoch")
            ingest_epoch(run, settings, Window())
            runs.finish_run(con, run_id, "epoch", status="success", counts=run.counts, requests=run.requests)
            phase("rebuild")
            rebuild(con, settings.release_inputs())
            phase("publish")
            publish(con, settings.db)
        finally:
            con.close()
    phase("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
