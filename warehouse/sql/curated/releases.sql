-- one row per release: for now one per Epoch model (later sources merge into these rows)
with epoch as (
    select * from stg_epoch__models
),

final as (
    select
        md5('epoch:' || epoch_name) as release_id,
        epoch_name as name,
        organization,
        publication_date as released_on,
        domain,
        parameters,
        in_notable as is_notable,
        case when in_notable then 'in Epoch AI''s notable models' end as notability_reason,
        [epoch_name] as epoch_names,
        ['epoch'] as sources
    from epoch
)

select * from final
