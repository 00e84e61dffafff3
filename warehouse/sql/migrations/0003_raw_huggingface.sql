-- Hugging Face Hub models as received: one row per repo per distinct content.
-- Listing records (the JSON object of the page) and hub-stats rows (the parquet row as JSON) share the
-- key and the API's field names; a popularity refresh that changes likes or downloads adds a version.
create table raw_huggingface__models (
    source_key varchar not null,      -- the repo id, e.g. Qwen/Qwen3-8B
    version integer not null,         -- 1 for the first content seen, +1 for each change
    content_hash varchar not null,    -- sha256 of payload
    payload json not null,            -- the listing's JSON object for the repo (or the hub-stats row), unchanged
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per repo: its latest version
create view raw_huggingface__models_latest as
select * from raw_huggingface__models
qualify row_number() over (partition by source_key order by version desc) = 1;
