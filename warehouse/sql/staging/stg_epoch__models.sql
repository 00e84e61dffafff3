-- one row per Epoch model, merged across the files (all, notable, frontier, large-scale) it appears in
-- Columns are mapped by name with every alias Epoch has used: its CSVs rename columns between releases.
with latest as (
    select source_key, payload
    from raw_epoch__models_latest
),

cells as (
    select
        substr(source_key, strpos(source_key, '#') + 1) as epoch_name,
        case
            when split_part(source_key, '#', 1) like 'notable_ai_models%' then 'notable'
            when split_part(source_key, '#', 1) like 'frontier_ai_models%' then 'frontier'
            when split_part(source_key, '#', 1) like 'large_scale_ai_models%' then 'large_scale'
            when split_part(source_key, '#', 1) like 'all_ai_models%' then 'all'
            else 'other'
        end as file_kind,
        nullif(trim(payload ->> 'Organization'), '') as organization,
        try_cast(nullif(trim(payload ->> 'Publication date'), '') as date) as publication_date,
        nullif(trim(payload ->> 'Domain'), '') as domain,
        nullif(trim(payload ->> 'Task'), '') as task,
        try_cast(nullif(trim(payload ->> 'Parameters'), '') as double) as parameters_raw,
        try_cast(nullif(trim(payload ->> 'Training compute (FLOP)'), '') as double) as training_compute_flop,
        nullif(trim(payload ->> 'Link'), '') as link,
        nullif(trim(payload ->> 'Reference'), '') as reference,
        nullif(trim(payload ->> 'Organization categorization'), '') as organization_categorization,
        nullif(trim(coalesce(
            payload ->> 'Country (of organization)',
            payload ->> 'Country (from Organization)'
        )), '') as country,
        nullif(trim(payload ->> 'Base model'), '') as base_model_name,
        nullif(trim(payload ->> 'Model accessibility'), '') as model_accessibility,
        nullif(trim(payload ->> 'Open model weights?'), '') as open_model_weights,
        nullif(trim(payload ->> 'Frontier model'), '') as frontier_model,
        nullif(trim(payload ->> 'Notability criteria'), '') as notability_criteria,
        nullif(trim(coalesce(payload ->> 'Benchmark data', payload ->> 'benchmarks/models')), '') as benchmark_data,
        nullif(trim(payload ->> 'Hugging Face developer id'), '') as hf_developer_id,
        -- which file's cell wins when files disagree: notable, all, large-scale, frontier; then by file name
        case
            when split_part(source_key, '#', 1) like 'notable_ai_models%' then '1'
            when split_part(source_key, '#', 1) like 'all_ai_models%' then '2'
            when split_part(source_key, '#', 1) like 'large_scale_ai_models%' then '3'
            else '4'
        end || split_part(source_key, '#', 1) as file_priority
    from latest
),

final as (
    select
        epoch_name,
        list(distinct file_kind order by file_kind) as files,
        bool_or(file_kind = 'notable') as in_notable,
        arg_min(organization, file_priority) filter (where organization is not null) as organization,
        arg_min(publication_date, file_priority) filter (where publication_date is not null) as publication_date,
        arg_min(domain, file_priority) filter (where domain is not null) as domain,
        arg_min(task, file_priority) filter (where task is not null) as task,
        -- counts beyond BIGINT (10^30 "parameters") are errors in the source, not models
        arg_min(parameters_raw, file_priority) filter (
            where parameters_raw between 1 and 9.0e18
        )::bigint as parameters,
        arg_min(training_compute_flop, file_priority) filter (
            where training_compute_flop > 0
        ) as training_compute_flop,
        arg_min(link, file_priority) filter (where link is not null) as link,
        regexp_extract(
            arg_min(link, file_priority) filter (where link is not null),
            'arxiv\.org/(?:abs|pdf)/([0-9]{4}\.[0-9]{4,5})', 1
        ) as link_arxiv_id,
        arg_min(reference, file_priority) filter (where reference is not null) as reference,
        arg_min(organization_categorization, file_priority) filter (
            where organization_categorization is not null
        ) as organization_categorization,
        arg_min(country, file_priority) filter (where country is not null) as country,
        arg_min(base_model_name, file_priority) filter (where base_model_name is not null) as base_model_name,
        arg_min(model_accessibility, file_priority) filter (where model_accessibility is not null) as model_accessibility,
        bool_or(open_model_weights = 'Yes' or model_accessibility like 'Open weights%') as is_open_weights,
        bool_or(frontier_model = 'True' or file_kind = 'frontier') as is_frontier,
        arg_min(notability_criteria, file_priority) filter (where notability_criteria is not null) as notability_criteria,
        arg_min(benchmark_data, file_priority) filter (where benchmark_data is not null) as benchmark_data,
        arg_min(hf_developer_id, file_priority) filter (where hf_developer_id is not null) as hf_developer_id
    from cells
    group by epoch_name
)

select * from final
