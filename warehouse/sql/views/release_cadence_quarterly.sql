-- one row per calendar quarter (UTC) with at least one notable release
-- The quarter in progress is partial: its average is per elapsed month and its projection scales
-- the releases so far to the whole quarter. Growth compares the projection with the previous
-- quarter's count; it is null when the previous quarter has no row.
with notable_releases as (
    select released_on
    from releases
    where is_notable and released_on is not null and released_on <= current_date
),

quarters as (
    select
        date_trunc('quarter', released_on)::date as quarter_start,
        count(*) as releases
    from notable_releases
    group by 1
),

spans as (
    select
        quarter_start,
        releases,
        (quarter_start + interval 3 month)::date - quarter_start as days_in_quarter,
        least(current_date - quarter_start + 1, (quarter_start + interval 3 month)::date - quarter_start) as days_elapsed
    from quarters
),

projected as (
    select
        quarter_start,
        releases,
        days_elapsed < days_in_quarter as is_partial,
        case
            when days_elapsed < days_in_quarter then round(releases * days_in_quarter / days_elapsed)::integer
            else releases
        end as projected_releases,
        releases / (3.0 * days_elapsed / days_in_quarter) as avg_per_month
    from spans
),

final as (
    select
        strftime(current_quarter.quarter_start, '%Y') || '-Q' || quarter(current_quarter.quarter_start) as quarter,
        current_quarter.quarter_start,
        current_quarter.releases::integer as releases,
        round(current_quarter.avg_per_month, 2)::double as avg_per_month,
        current_quarter.is_partial,
        current_quarter.projected_releases::integer as projected_releases,
        round(
            100.0 * (current_quarter.projected_releases - previous_quarter.releases) / previous_quarter.releases, 1
        )::double as qoq_growth_pct
    from projected as current_quarter
    left join projected as previous_quarter
        on previous_quarter.quarter_start = (current_quarter.quarter_start - interval 3 month)::date
)

select * from final
order by quarter_start
