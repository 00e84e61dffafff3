-- one row per Papers With Code paper that points at an arXiv paper or a Hub model
-- A catalog entry never makes a release on its own: it joins the release its paper or repo belongs to.
with papers as (
    select * from stg_paperswithcode__papers
),

results as (
    select pwc_paper_id, count(*) as result_rows
    from stg_paperswithcode__results
    group by 1
),

final as (
    select
        'pwc:' || papers.pwc_id as member_key,
        'paperswithcode' as source,
        papers.pwc_id as source_key,
        papers.title as name,
        cast(null as varchar) as organization,
        cast(null as varchar) as hf_author,
        papers.published_on as released_on,
        cast(null as timestamptz) as first_seen_at,
        cast(null as timestamptz) as last_seen_at,
        case when papers.arxiv_id is not null then [papers.arxiv_id] else [] end::varchar[] as arxiv_ids,
        coalesce(papers.hf_model_ids, [])::varchar[] as linked_hf_repos,
        []::varchar[] as base_names,
        cast(null as varchar) as base_relation,
        cast(null as varchar) as domain,
        cast(null as varchar) as task,
        cast(null as varchar) as pipeline_tag,
        []::varchar[] as tags,
        cast(null as varchar) as library_name,
        cast(null as bigint) as parameters,
        cast(null as double) as training_compute_flop,
        false as is_epoch_frontier,
        false as in_epoch_notable,
        cast(null as varchar) as org_categorization,
        false as is_open_weights,
        cast(null as varchar) as model_accessibility,
        cast(null as bigint) as likes,
        case when results.result_rows > 0 then ['paperswithcode'] else [] end::varchar[] as evidence,
        false as can_stand_alone,
        cast(null as double) as open_llm_v1_average,
        cast(null as double) as open_llm_v2_average
    from papers
    left join results on results.pwc_paper_id = papers.pwc_id
    where papers.arxiv_id is not null or len(coalesce(papers.hf_model_ids, [])) > 0
)

select * from final
