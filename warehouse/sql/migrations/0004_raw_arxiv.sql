-- arXiv API entries as received: one row per paper (id without version) per distinct content.
-- A new version of a paper, or a metadata change arXiv makes to it, adds version+1: the history stays.
create table raw_arxiv__papers (
    source_key varchar not null,      -- arXiv id without version: 2302.13971, astro-ph/0601001
    version integer not null,         -- 1 for the first content seen, +1 for each change (not arXiv's vN)
    content_hash varchar not null,    -- sha256 of payload
    payload json not null,            -- the Atom <entry> as {element: [value]}, texts exactly as received
    fetched_at timestamptz not null,
    run_id varchar not null,
    primary key (source_key, version)
);

-- one row per paper: its latest version
create view raw_arxiv__papers_latest as
select * from raw_arxiv__papers
qualify row_number() over (partition by source_key order by version desc) = 1;
