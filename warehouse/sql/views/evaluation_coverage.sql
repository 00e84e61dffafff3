-- one row per calendar quarter (UTC) and quality tier with at least one notable release
-- How many of the quarter's notable releases have any published evaluation (model-index, evalResults,
-- Papers With Code results, Epoch benchmark data, Open LLM Leaderboard entries): the evaluation gap is without_evaluation.
with notable_releases as (
    select
        strftime(released_on, '%Y') || '-Q' || quarter(released_on) as quarter,
        quality_tier,
        has_evaluation
    from releases
    where is_notable and released_on is not null and released_on <= current_date
),

final as (
    select
        quarter,
        quality_tier,
        count(*)::integer as releases,
        count(*) filter (where has_evaluation)::integer as with_evaluation,
        count(*) filter (where not has_evaluation)::integer as without_evaluation,
        round(100.0 * count(*) filter (where has_evaluation) / count(*), 1)::double as share_evaluated_pct
    from notable_releases
    group by quarter, quality_tier
)

select * from final
order by quarter, array_position(['frontier', 'near_frontier', 'production', 'experimental'], quality_tier), quality_tier
