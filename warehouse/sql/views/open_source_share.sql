-- one row per calendar quarter (UTC) with at least one notable release
-- open_weights: releases whose weights anyone can download; community_releases: releases by the
-- open-source community (org_type open_source_community: collectives, individuals, Hub accounts
-- outside the organization registry). Both are shares of the quarter's notable releases.
with notable_releases as (
    select
        strftime(released_on, '%Y') || '-Q' || quarter(released_on) as quarter,
        is_open_weights,
        org_type = 'open_source_community' as is_community
    from releases
    where is_notable and released_on is not null and released_on <= current_date
),

final as (
    select
        quarter,
        count(*)::integer as releases,
        count(*) filter (where is_open_weights)::integer as open_weights,
        round(100.0 * count(*) filter (where is_open_weights) / count(*), 1)::double as open_weights_share_pct,
        count(*) filter (where is_community)::integer as community_releases,
        round(100.0 * count(*) filter (where is_community) / count(*), 1)::double as community_share_pct
    from notable_releases
    group by quarter
)

select * from final
order by quarter
