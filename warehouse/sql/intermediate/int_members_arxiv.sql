-- one row per arXiv paper that announces a model or that another source points at
with papers as (
    select * from stg_arxiv__papers
),

referenced as (
    select unnest(arxiv_ids) as arxiv_id from stg_huggingface__models
    union
    select link_arxiv_id from stg_epoch__models where link_arxiv_id <> ''
    union
    select arxiv_id from stg_paperswithcode__papers where arxiv_id is not null
),

final as (
    select
        'arxiv:' || papers.arxiv_id as member_key,
        'arxiv' as source,
        papers.arxiv_id as source_key,
        coalesce(papers.announced_models[1], papers.title) as name,
        cast(null as varchar) as organization,
        cast(null as varchar) as hf_author,
        cast(papers.published_at as date) as released_on,
        papers.first_seen_at,
        papers.last_seen_at,
        [papers.arxiv_id]::varchar[] as arxiv_ids,
        []::varchar[] as linked_hf_repos,
        []::varchar[] as base_names,
        cast(null as varchar) as base_relation,
        cast(null as varchar) as domain,
        papers.title as task,
        cast(null as varchar) as pipeline_tag,
        coalesce(papers.categories, [])::varchar[] as tags,
        cast(null as varchar) as library_name,
        cast(null as bigint) as parameters,
        cast(null as double) as training_compute_flop,
        false as is_epoch_frontier,
        false as in_epoch_notable,
        cast(null as varchar) as org_categorization,
        len(coalesce(papers.hf_urls, [])) > 0 as is_open_weights,
        cast(null as varchar) as model_accessibility,
        cast(null as bigint) as likes,
        []::varchar[] as evidence,
        coalesce(papers.is_model_paper, false) as can_stand_alone,
        cast(null as double) as open_llm_v1_average,
        cast(null as double) as open_llm_v2_average
    from papers
    where coalesce(papers.is_model_paper, false)
        or papers.arxiv_id in (select arxiv_id from referenced)
)

select * from final
