-- one row per Hub repo: its latest landed version, unpacked
-- Reads both shapes raw holds: listing records (lineage in tags and cardData.base_model) and hub-stats rows
-- (lineage also in baseModels {models: [{id}], relation}). Tags are the Hub's own, computed from the card.
-- A rebuild restages only the keys with a new raw version: it reads their rows in place of the view below
-- (`transforms/keyed_staging.py`), so every other CTE must read raw through `latest`, or for its keys only.
with latest as (
    select source_key, payload, fetched_at
    from raw_huggingface__models_latest
),

-- when the repo was first landed: its first version, which a later one never changes
first_seen as (
    select source_key, min(fetched_at) as first_seen_at
    from raw_huggingface__models
    where source_key in (select source_key from latest)
    group by 1
),

-- every field in one pass: a list of paths parses each payload once, where one `->>` per field parses it 15 times
extracted as (
    select
        source_key,
        fetched_at,
        json_extract(payload, [
            '$.author', '$.createdAt', '$.lastModified', '$.pipeline_tag', '$.library_name', '$.tags',
            '$.cardData.base_model', '$.baseModels.models', '$.baseModels.relation', '$.likes', '$.downloads',
            '$.safetensors.total', '$.cardData."model-index"', '$."model-index"', '$.evalResults'
        ]) as value
    from latest
),

fields as (
    select
        source_key as repo_id,
        nullif(trim(value[1] ->> '$'), '') as author_sent,
        try_cast(value[2] ->> '$' as timestamptz) as created_at,
        try_cast(value[3] ->> '$' as timestamptz) as last_modified,
        nullif(value[4] ->> '$', '') as pipeline_tag,
        nullif(value[5] ->> '$', '') as library_name,
        case when json_type(value[6]) = 'ARRAY' then value[6] ->> '$[*]' else [] end as tags,
        case json_type(value[7])
            when 'VARCHAR' then [value[7] ->> '$']
            when 'ARRAY' then value[7] ->> '$[*]'
            else []
        end as card_base_models,
        case when json_type(value[8]) = 'ARRAY' then value[8] ->> '$[*].id' else [] end as stats_base_models,
        nullif(value[9] ->> '$', '') as stats_relation,
        try_cast(value[10] ->> '$' as bigint) as likes,
        try_cast(value[11] ->> '$' as bigint) as downloads,
        try_cast(value[12] ->> '$' as bigint) as parameters,
        coalesce(json_type(value[13]) not in ('NULL'), false)
            or coalesce(json_type(value[14]) not in ('NULL'), false) as card_model_index,
        coalesce(json_array_length(case when json_type(value[15]) = 'ARRAY' then value[15] end), 0) > 0
            as has_eval_results,
        fetched_at
    from extracted
),

lineage as (
    select
        repo_id,
        -- base_model:<repo> and base_model:<relation>:<repo>; the relation word is dropped from the repo
        list_transform(
            list_filter(tags, lambda tag: tag like 'base_model:%'),
            lambda tag: regexp_replace(substr(tag, 12), '^(finetune|adapter|quantized|merge):', '')
        ) as tag_base_models,
        list_transform(
            list_filter(tags, lambda tag: regexp_matches(tag, '^base_model:(finetune|adapter|quantized|merge):')),
            lambda tag: regexp_extract(tag, '^base_model:([a-z]+):', 1)
        ) as tag_relations
    from fields
),

final as (
    select
        fields.repo_id,
        coalesce(fields.author_sent, case when fields.repo_id like '%/%' then split_part(fields.repo_id, '/', 1) end)
            as author,
        fields.created_at,
        fields.last_modified,
        fields.pipeline_tag,
        fields.library_name,
        fields.tags::varchar[] as tags,
        list_sort(list_distinct(list_transform(
            list_filter(fields.tags, lambda tag: tag like 'arxiv:%'),
            lambda tag: regexp_replace(substr(tag, 7), 'v[0-9]+$', '')
        )))::varchar[] as arxiv_ids,
        substr(list_filter(fields.tags, lambda tag: tag like 'license:%')[1], 9) as license,
        list_sort(list_distinct(list_transform(
            list_filter(fields.tags, lambda tag: tag like 'dataset:%'), lambda tag: substr(tag, 9)
        )))::varchar[] as datasets,
        list_sort(list_distinct(list_filter(
            list_concat(lineage.tag_base_models, fields.card_base_models, fields.stats_base_models),
            lambda base: nullif(trim(base), '') is not null
        )))::varchar[] as base_models,
        coalesce(lineage.tag_relations[1], fields.stats_relation) as base_relation,
        fields.likes,
        fields.downloads,
        fields.parameters,
        fields.card_model_index or list_contains(fields.tags, 'model-index') as has_model_index,
        fields.has_eval_results,
        coalesce(fields.library_name in ('gguf', 'ggml'), false)
            or list_contains(fields.tags, 'gguf') or list_contains(fields.tags, 'ggml') as gguf,
        fields.fetched_at,
        first_seen.first_seen_at
    from fields
    inner join lineage on lineage.repo_id = fields.repo_id
    inner join first_seen on first_seen.source_key = fields.repo_id
)

select * from final
