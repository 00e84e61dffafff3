-- one row per arXiv paper (id without version), as its latest landed version describes it
-- Texts are whitespace-normalised; authors are repaired where arXiv double-encoded them (raw keeps
-- them as received). Links, repaired names and the model-paper verdict come from Python
-- (`transforms/arxiv_facts.py`), joined one-to-one on the payload's content hash.
with latest as (
    select source_key, content_hash, payload
    from raw_arxiv__papers_latest
),

facts as (
    select *
    from _arxiv_paper_facts
),

renamed as (
    select
        source_key as arxiv_id,
        content_hash,
        try_cast(regexp_extract(payload ->> '$.id[0]', 'v([0-9]+)$', 1) as integer) as version,
        try_cast(payload ->> '$.published[0]' as timestamptz) as published_at,
        try_cast(payload ->> '$.updated[0]' as timestamptz) as updated_at,
        nullif(trim(regexp_replace(payload ->> '$.title[0]', '\s+', ' ', 'g')), '') as title,
        nullif(trim(regexp_replace(payload ->> '$.summary[0]', '\s+', ' ', 'g')), '') as abstract,
        coalesce(json_extract_string(payload, '$.author[*]."arxiv:affiliation"[*]'), [])::varchar[] as all_affiliations,
        nullif(payload ->> '$."arxiv:primary_category"[0]."@term"', '') as primary_category,
        coalesce(json_extract_string(payload, '$.category[*]."@term"'), [])::varchar[] as categories,
        nullif(trim(regexp_replace(payload ->> '$."arxiv:comment"[0]', '\s+', ' ', 'g')), '') as comment,
        nullif(trim(regexp_replace(payload ->> '$."arxiv:journal_ref"[0]', '\s+', ' ', 'g')), '') as journal_ref,
        nullif(trim(payload ->> '$."arxiv:doi"[0]'), '') as doi,
        list_filter(
            json_extract(payload, '$.link[*]'), lambda link: link ->> '@rel' = 'alternate'
        )[1] ->> '@href' as abs_url,
        list_filter(
            json_extract(payload, '$.link[*]'), lambda link: link ->> '@title' = 'pdf'
        )[1] ->> '@href' as pdf_url
    from latest
),

final as (
    select
        renamed.arxiv_id,
        renamed.version,
        renamed.published_at,
        renamed.updated_at,
        renamed.title,
        renamed.abstract,
        coalesce(facts.authors, [])::varchar[] as authors,
        -- distinct, in order of first appearance
        list_filter(
            renamed.all_affiliations, lambda affiliation, position: list_position(renamed.all_affiliations, affiliation) = position
        ) as affiliations,
        renamed.primary_category,
        renamed.categories,
        renamed.comment,
        renamed.journal_ref,
        renamed.doi,
        coalesce(renamed.abs_url, 'https://arxiv.org/abs/' || renamed.arxiv_id) as abs_url,
        renamed.pdf_url,
        coalesce(facts.code_urls, [])::varchar[] as code_urls,
        coalesce(facts.hf_urls, [])::varchar[] as hf_urls,
        coalesce(facts.is_model_paper, false) as is_model_paper,
        coalesce(facts.announced_models, [])::varchar[] as announced_models,
        facts.model_evidence
    from renamed
    left join facts on facts.content_hash = renamed.content_hash
)

select * from final
