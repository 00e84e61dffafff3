-- one row per source that has ever run: what `census status` shows
-- a key's versions are numbered from 1 (`warehouse/sql/land_raw_page.sql`): its first version counts the key,
-- without the hash table of every key that `count(distinct source_key)` needs (0.5 s a night at Hub scale)
with raw_counts as (
    select 'epoch' as source, count(*) filter (where version = 1) as raw_records, count(*) as raw_versions
    from raw_epoch__models
    union all
    select 'arxiv', count(*) filter (where version = 1), count(*) from raw_arxiv__papers
    union all
    select 'huggingface', count(*) filter (where version = 1), count(*) from raw_huggingface__models
    union all
    select 'paperswithcode', count(*) filter (where version = 1), count(*) from raw_paperswithcode__papers
    union all
    select 'open_llm_leaderboard', count(*) filter (where version = 1), count(*) from raw_open_llm_leaderboard__results
),

reject_counts as (
    select source, count(*) as rejected_records
    from rejects
    group by source
),

last_runs as (
    select
        source,
        max(finished_at) filter (where status = 'success') as last_success_at,
        arg_max(status, started_at) as last_status,
        arg_max(started_at, started_at) as last_started_at,
        arg_max(error, started_at) as last_error
    from ingestion_runs
    group by source
),

final as (
    select
        last_runs.source,
        last_runs.last_success_at,
        ingestion_state.watermark,
        coalesce(raw_counts.raw_records, 0) as raw_records,
        coalesce(raw_counts.raw_versions, 0) as raw_versions,
        coalesce(reject_counts.rejected_records, 0) as rejected_records,
        last_runs.last_status,
        last_runs.last_started_at,
        last_runs.last_error
    from last_runs
    left join raw_counts on raw_counts.source = last_runs.source
    left join reject_counts on reject_counts.source = last_runs.source
    left join ingestion_state on ingestion_state.source = last_runs.source
)

select * from final
order by source
