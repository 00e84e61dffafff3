-- Papers With Code records as received: the revived catalog's API (key `api:<catalog id>`) and the
-- old site's archive on the Hub (key `archive:<paper slug>`); the key prefix says where a row came from.
create table raw_paperswithcode__papers (
    source_key varchar not null,      -- api:<catalog id> or archive:<paper_url slug>
    version integer not null,         -- 1 for the first content seen, +1 for each change
    content_hash varchar not null,    -- sha256 of payload
    payload json not null,            -- API: the listing item as received; archive: {paper, code_links}
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per paper key: its latest version
create view raw_paperswithcode__papers_latest as
select * from raw_paperswithcode__papers
qualify row_number() over (partition by source_key order by version desc) = 1;

-- Benchmark results: API evaluation rows (key `api:<paper id>#<evaluation id>`) and archive
-- leaderboard rows (key `archive:<sha256 of the row>`: the frozen archive has no row ids).
create table raw_paperswithcode__results (
    source_key varchar not null,
    version integer not null,
    content_hash varchar not null,
    payload json not null,            -- API: the evaluation row as received; archive: the sota row with its task and dataset
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per result key: its latest version
create view raw_paperswithcode__results_latest as
select * from raw_paperswithcode__results
qualify row_number() over (partition by source_key order by version desc) = 1;
