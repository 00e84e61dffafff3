-- one row per base release with at least one derivative released within 12 weeks after it
-- Counts are cumulative: a derivative 20 days after its base counts in all three windows. A window
-- is measured in days after the base's release date (4 weeks = 0 to 28 days); derivatives are those
-- of derivative_releases, notable or not.
-- Derivatives are counted per base and day before the join: the join then builds on those few
-- thousand rows instead of every derivative (half the time at Hub scale, docs/PERFORMANCE.md).
with derivatives_per_day as (
    select base_release_id, released_on, count(*) as derivatives
    from releases
    where base_release_id is not null and released_on is not null
    group by base_release_id, released_on
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
        derivatives_per_day.released_on - bases.released_on as days_after,
        derivatives_per_day.derivatives
    from derivatives_per_day
    inner join bases on bases.release_id = derivatives_per_day.base_release_id
),

final as (
    select
        base_model,
        base_released_on,
        coalesce(sum(derivatives) filter (where days_after between 0 and 28), 0)::integer as derivatives_4w,
        coalesce(sum(derivatives) filter (where days_after between 0 and 56), 0)::integer as derivatives_8w,
        coalesce(sum(derivatives) filter (where days_after between 0 and 84), 0)::integer as derivatives_12w
    from lags
    group by base_release_id, base_model, base_released_on
    having sum(derivatives) filter (where days_after between 0 and 84) > 0
)

select * from final
order by base_released_on, base_model
