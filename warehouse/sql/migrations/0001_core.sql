-- Bookkeeping shared by every source: runs, watermarks and rejected records.

-- one row per source per run
create table ingestion_runs (
    run_id varchar not null,
    source varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status varchar not null,          -- running, success, failed, unavailable: <reason>, stopped_at_budget
    fetched bigint not null default 0,
    new bigint not null default 0,
    changed bigint not null default 0,
    unchanged bigint not null default 0,
    rejected bigint not null default 0,
    requests bigint not null default 0,
    url varchar,                      -- what failed, never with credentials
    error varchar,
    detail json,                      -- source-specific facts (window, path taken, budget)
    primary key (run_id, source)
);

-- one row per source: where its next incremental run starts
create table ingestion_state (
    source varchar primary key,
    watermark varchar,                -- human-readable, shown by `census status`
    cursor json,                      -- whatever the source needs to resume
    run_id varchar not null,
    updated_at timestamptz not null
);

-- one row per distinct rejected record per source
create table rejects (
    source varchar not null,
    raw_hash varchar not null,
    source_key varchar,
    raw_text varchar not null,
    reason varchar not null,
    first_run_id varchar not null,
    last_run_id varchar not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    primary key (source, raw_hash)
);
