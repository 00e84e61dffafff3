-- Epoch AI rows as received: one row per (file, model) per distinct content.
create table raw_epoch__models (
    source_key varchar not null,      -- <file name>#<Model>
    version integer not null,         -- 1 for the first content seen, +1 for each change
    content_hash varchar not null,    -- sha256 of payload
    payload json not null,            -- the CSV row as {header: cell}, cells exactly as received
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per (file, model): its latest version
create view raw_epoch__models_latest as
select * from raw_epoch__models
qualify row_number() over (partition by source_key order by version desc) = 1;
