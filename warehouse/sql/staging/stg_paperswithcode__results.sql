-- one row per benchmark result row and metric: a model's score on a task's dataset, from the API or the archive
-- Metric values stay as published in `metric_text`; `metric_value` is the number in it, when there is one.
with api_results as (
    select source_key, payload
    from raw_paperswithcode__results_latest
    where source_key like 'api:%'
),

archive_results as (
    select source_key, payload
    from raw_paperswithcode__results_latest
    where source_key like 'archive:%'
),

papers as (
    -- lookup only: archive rows name their paper by URL, and its arXiv id lives on the paper
    select source_key, payload
    from raw_paperswithcode__papers_latest
),

api_renamed as (
    select
        api_results.source_key as result_key,
        coalesce(api_results.payload ->> 'paper_id', split_part(substr(api_results.source_key, 5), '#', 1)) as pwc_paper_id,
        coalesce(
            nullif(trim(api_results.payload ->> 'paper_arxiv_id'), ''),
            nullif(trim(papers.payload ->> 'arxiv_id'), '')
        ) as arxiv_id_raw,
        api_results.payload ->> 'model_name' as model_name,
        api_results.payload ->> 'task_name' as task_name,
        api_results.payload ->> 'dataset_name' as dataset_name,
        api_results.payload -> 'metrics' as metrics,
        try_cast(api_results.payload ->> 'best_rank' as integer) as best_rank,
        try_cast(api_results.payload ->> 'is_open' as boolean) as is_open,
        try_cast(api_results.payload ->> 'num_parameters' as double) as num_parameters,
        coalesce(api_results.payload ->> 'result_url', api_results.payload ->> 'source_url') as source_url,
        'api' as origin
    from api_results
    left join papers
        on papers.source_key = 'api:' || split_part(substr(api_results.source_key, 5), '#', 1)
),

archive_renamed as (
    select
        archive_results.source_key as result_key,
        nullif(regexp_extract(archive_results.payload ->> '$.row.paper_url', '^https?://paperswithcode\.com/paper/([^/?#]+)', 1), '') as pwc_paper_id,
        -- leaderboard rows link their paper on paperswithcode.com or straight on arXiv
        coalesce(
            nullif(trim(papers.payload ->> '$.paper.arxiv_id'), ''),
            nullif(regexp_extract(archive_results.payload ->> '$.row.paper_url', 'arxiv\.org/(?:abs|pdf)/([0-9]{4}\.[0-9]{4,5}(?:v[0-9]+)?)', 1), '')
        ) as arxiv_id_raw,
        archive_results.payload ->> '$.row.model_name' as model_name,
        archive_results.payload ->> 'task' as task_name,
        archive_results.payload ->> 'dataset' as dataset_name,
        archive_results.payload -> '$.row.metrics' as metrics,
        cast(null as integer) as best_rank,
        cast(null as boolean) as is_open,
        cast(null as double) as num_parameters,
        nullif(archive_results.payload ->> '$.row.paper_url', '') as source_url,
        'archive' as origin
    from archive_results
    left join papers
        on papers.source_key = 'archive:' || regexp_extract(archive_results.payload ->> '$.row.paper_url', '^https?://paperswithcode\.com/paper/([^/?#]+)', 1)
),

unioned as (
    select * from api_renamed
    union all
    select * from archive_renamed
),

metrics as (
    select
        unioned.* exclude (metrics),
        unnest(map_entries(json_transform(unioned.metrics, '"MAP(VARCHAR, JSON)"'))) as metric
    from unioned
),

final as (
    select
        result_key,
        pwc_paper_id,
        regexp_replace(arxiv_id_raw, 'v[0-9]+$', '') as arxiv_id,
        model_name,
        task_name,
        dataset_name,
        metric.key as metric_name,
        try_cast(replace(replace(trim(metric.value ->> '$'), ',', ''), '%', '') as double) as metric_value,
        metric.value ->> '$' as metric_text,
        best_rank,
        is_open,
        num_parameters,
        source_url,
        origin
    from metrics
    where metric.value is not null and json_type(metric.value) <> 'NULL'
)

select * from final
