-- one row per calendar quarter (UTC) and quality tier with at least one notable release
-- share_pct is the tier's share of the quarter's notable releases; examples are up to three names,
-- most notable (highest prominence) first.
with notable_releases as (
    select
        strftime(released_on, '%Y') || '-Q' || quarter(released_on) as quarter,
        quality_tier,
        name,
        prominence,
        release_id
    from releases
    where is_notable and released_on is not null and released_on <= current_date
),

ranked as (
    select
        *,
        row_number() over (partition by quarter, quality_tier order by prominence desc, name, release_id) as rank_in_group
    from notable_releases
),

groups as (
    select
        quarter,
        quality_tier,
        count(*) as releases,
        string_agg(name, ', ' order by rank_in_group) filter (where rank_in_group <= 3) as examples
    from ranked
    group by quarter, quality_tier
),

final as (
    select
        quarter,
        quality_tier,
        releases::integer as releases,
        round(100.0 * releases / sum(releases) over (partition by quarter), 1)::double as share_pct,
        examples
    from groups
)

select * from final
order by quarter, releases desc, quality_tier
