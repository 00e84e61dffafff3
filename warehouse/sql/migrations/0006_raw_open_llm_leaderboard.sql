-- Open LLM Leaderboard archive rows as received: one row per (version, repo, precision, model sha) per distinct content.
create table raw_open_llm_leaderboard__results (
    source_key varchar not null,      -- <v1|v2>:<fullname>:<Precision>:<Model sha>
    version integer not null,         -- 1 for the first content seen, +1 for each change
    content_hash varchar not null,    -- sha256 of payload
    payload json not null,            -- the parquet row as {column: value}, column names as the archive has them
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per (version, repo, precision, model sha): its latest version
create view raw_open_llm_leaderboard__results_latest as
select * from raw_open_llm_leaderboard__results
qualify row_number() over (partition by source_key order by version desc) = 1;
