-- one row per release whose base model is another release in the warehouse
-- Every such release, notable or not: the community's derivatives are rarely notable one by one.
-- days_after is negative when the sources date the derivative before its base.
with derivatives as (
    select release_id, name, organization, released_on, base_release_id
    from releases
    where base_release_id is not null
),

bases as (
    select release_id, name, released_on
    from releases
),

final as (
    select
        bases.name as base_model,
        bases.released_on as base_released_on,
        derivatives.name as derivative,
        derivatives.organization,
        derivatives.released_on,
        (derivatives.released_on - bases.released_on)::integer as days_after
    from derivatives
    inner join bases on bases.release_id = derivatives.base_release_id
)

select * from final
order by base_released_on, base_model, released_on, derivative
