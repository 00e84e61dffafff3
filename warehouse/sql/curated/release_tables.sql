-- The curated tables the release builder (transforms/build_releases.py) fills: created by a build of every member,
-- then brought up to date by each night's, row by row.
-- No primary keys: the builder writes each key once, and a night's deletes and inserts of a few thousand rows
-- took 1.1 to 1.2 s with the keys' indexes against 0.3 s without, at full Hub size (docs/PERFORMANCE.md).

-- one row per model release, merged across sources
create or replace table releases (
    release_id varchar not null,        -- unique; stable: derived from the release's first Epoch row, else repo, else paper
    name varchar not null,
    family varchar not null,
    organization varchar,
    org_type varchar not null,
    modality varchar not null,
    released_on date,                   -- earliest public date across the sources
    quality_tier varchar not null,
    base_release_id varchar,
    base_model varchar,
    lineage_relation varchar,
    parameters bigint,
    is_notable boolean not null,
    notability_reason varchar,
    has_evaluation boolean not null,
    evaluation_evidence varchar[] not null,
    is_open_weights boolean not null,
    prominence double not null,
    hub_likes bigint not null,
    training_compute_flop double,
    epoch_published_on date,
    hf_created_on date,
    arxiv_published_on date,
    hf_repo_ids varchar[] not null,
    arxiv_ids varchar[] not null,
    epoch_names varchar[] not null,
    pwc_ids varchar[] not null,
    sources varchar[] not null,
    label_reasons json not null,
    first_seen_at timestamptz,
    updated_at timestamptz,
    open_llm_v1_average double,         -- best Open LLM Leaderboard v1 average of any of its Hub repos
    open_llm_v2_average double          -- best Open LLM Leaderboard v2 average of any of its Hub repos
);

-- one row per source record in a release
create or replace table release_members (
    release_id varchar not null,
    member_key varchar not null,        -- unique; <source prefix>:<source key>, e.g. hf:meta-llama/Llama-2-7b-hf
    source varchar not null,
    source_key varchar not null,
    role varchar not null,              -- main, variant, paper, catalog
    name varchar,
    released_on date
);

-- one row per source record that can never be a release, with the reason
create or replace table release_exclusions (
    member_key varchar not null,        -- unique
    source varchar not null,
    source_key varchar not null,
    reason varchar not null
);

-- one row per analyst override (seeded from the overrides CSV on every rebuild)
create or replace table overrides (
    action varchar not null,            -- label, merge, split
    member_key varchar not null,
    field varchar,
    value varchar,
    other_member_key varchar,
    note varchar
);
