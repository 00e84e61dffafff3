-- one row per paper: the live catalog's record, or the archive's when the catalog does not list its arXiv id
-- `origin` says which (api|archive); repositories and Hub models are URLs and repo ids as the source linked them.
with api_papers as (
    select source_key, payload
    from raw_paperswithcode__papers_latest
    where source_key like 'api:%'
),

archive_papers as (
    select source_key, payload
    from raw_paperswithcode__papers_latest
    where source_key like 'archive:%'
),

api_renamed as (
    select
        substr(source_key, 5) as pwc_id,
        nullif(trim(payload ->> 'arxiv_id'), '') as arxiv_id_raw,
        payload ->> 'title' as title,
        try_cast(left(coalesce(payload ->> 'published', payload ->> 'date_published'), 10) as date) as published_on,
        -- repositories come as {url, is_official} objects (older answers: bare URLs)
        list_filter(
            list_transform(json_extract(payload, '$.repositories[*]'), lambda repo: coalesce(repo ->> 'url', repo ->> '$')),
            lambda url: url is not null
        ) as repositories,
        list_filter(
            list_transform(
                json_extract_string(payload, '$.hf_models[*]'),
                lambda model: coalesce(
                    nullif(regexp_extract(model, '^https?://(?:www\.)?huggingface\.co/([^/?#]+/[^/?#]+)', 1), ''),
                    case when model not like '%://%' and model like '%/%' then model end
                )
            ),
            lambda model: model is not null and split_part(model, '/', 1) not in ('datasets', 'spaces')
        ) as hf_model_ids,
        'api' as origin
    from api_papers
),

archive_renamed as (
    select
        substr(source_key, 9) as pwc_id,
        nullif(trim(payload ->> '$.paper.arxiv_id'), '') as arxiv_id_raw,
        payload ->> '$.paper.title' as title,
        try_cast(left(payload ->> '$.paper.date', 10) as date) as published_on,
        list_filter(
            list_transform(json_extract(payload, '$.code_links[*]'), lambda link: link ->> 'repo_url'),
            lambda url: url is not null
        ) as repositories,
        []::varchar[] as hf_model_ids,
        'archive' as origin
    from archive_papers
),

unioned as (
    select * from api_renamed
    union all
    select * from archive_renamed
),

final as (
    select
        pwc_id,
        regexp_replace(arxiv_id_raw, 'v[0-9]+$', '') as arxiv_id,
        title,
        published_on,
        repositories::varchar[] as repositories,
        hf_model_ids::varchar[] as hf_model_ids,
        origin
    from unioned
    -- the archive froze in July 2025; where the live catalog lists the same arXiv paper, it wins
    qualify row_number() over (
        partition by coalesce(regexp_replace(arxiv_id_raw, 'v[0-9]+$', ''), origin || ':' || pwc_id)
        order by origin = 'api' desc, pwc_id
    ) = 1
)

select * from final
