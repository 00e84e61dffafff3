-- one row per record of a page: how it compares with the latest version already landed
-- {raw_table} is one of our own raw table names, never user input
with page_records as (
    select
        unnest($keys) as source_key,
        unnest($payloads) as payload
),

page as (
    -- the hex sha256 of the payload's UTF-8 bytes, as `warehouse.raw.content_hash` computes it in Python
    select source_key, sha256(payload) as content_hash, payload
    from page_records
),

latest as (
    select source_key, version, content_hash
    from {raw_table}
    where source_key in (select source_key from page)
    qualify row_number() over (partition by source_key order by version desc) = 1
),

final as (
    select
        page.source_key,
        page.content_hash,
        page.payload,
        coalesce(latest.version, 0) + 1 as next_version,
        case
            when latest.source_key is null then 'new'
            when latest.content_hash = page.content_hash then 'unchanged'
            else 'changed'
        end as outcome
    from page
    left join latest on latest.source_key = page.source_key
)

select * from final
