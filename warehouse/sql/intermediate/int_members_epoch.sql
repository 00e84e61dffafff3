-- one row per Epoch model: a candidate member of a release
with epoch as (
    select * from stg_epoch__models
),

first_seen as (
    select
        substr(source_key, strpos(source_key, '#') + 1) as epoch_name,
        min(fetched_at) as first_seen_at,
        max(fetched_at) as last_seen_at
    from raw_epoch__models
    group by 1
),

final as (
    select
        'epoch:' || epoch.epoch_name as member_key,
        'epoch' as source,
        epoch.epoch_name as source_key,
        epoch.epoch_name as name,
        epoch.organization,
        cast(null as varchar) as hf_author,
        epoch.publication_date as released_on,
        first_seen.first_seen_at,
        first_seen.last_seen_at,
        case when epoch.link_arxiv_id <> '' then [epoch.link_arxiv_id] else [] end::varchar[] as arxiv_ids,
        []::varchar[] as linked_hf_repos,
        case when epoch.base_model_name is not null then [epoch.base_model_name] else [] end::varchar[] as base_names,
        case when epoch.base_model_name is not null then 'finetune' end as base_relation,
        epoch.domain,
        epoch.task,
        cast(null as varchar) as pipeline_tag,
        []::varchar[] as tags,
        cast(null as varchar) as library_name,
        epoch.parameters,
        epoch.training_compute_flop,
        coalesce(epoch.is_frontier, false) as is_epoch_frontier,
        coalesce(epoch.in_notable, false) as in_epoch_notable,
        epoch.organization_categorization as org_categorization,
        coalesce(epoch.is_open_weights, false) as is_open_weights,
        epoch.model_accessibility,
        cast(null as bigint) as likes,
        case when epoch.benchmark_data is not null then ['epoch_benchmarks'] else [] end::varchar[] as evidence,
        true as can_stand_alone,
        cast(null as double) as open_llm_v1_average,
        cast(null as double) as open_llm_v2_average
    from epoch
    left join first_seen on first_seen.epoch_name = epoch.epoch_name
)

select * from final
