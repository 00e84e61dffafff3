-- one row per base release with at least one derivative released within 12 weeks after it
-- Counts are cumulative: a derivative 20 days after its base counts in all three windows. A window
-- is measured in days after the base's release date (4 weeks = 0 to 28 days); derivatives are those
-- of derivative_releases, notable or not.
with derivatives as (
    select release_id, released_on, base_release_id
    from releases
    where base_release_id is not null and released_on is not null
),

bases as (
    select release_id, name, released_on
    from releases
    where released_on is not null
),

lags as (
    select
        bases.release_id as base_release_id,
        bases.name as base_model,
        bases.released_on as base_released_on,
        derivatives.released_on - bases.released_on as days_after
    from derivatives
    inner join bases on bases.release_id = derivatives.base_release_id
),

final as (
    select
        base_model,
        base_released_on,
        count(*) filter (where days_after between 0 and 28)::integer as derivatives_4w,
        count(*) filter (where days_after between 0 and 56)::integer as derivatives_8w,
        count(*) filter (where days_after between 0 and 84)::integer as derivatives_12w
    from lags
    group by base_release_id, base_model, base_released_on
    having count(*) filter (where days_after between 0 and 84) > 0
)

select * from final
order by base_released_on, base_model
