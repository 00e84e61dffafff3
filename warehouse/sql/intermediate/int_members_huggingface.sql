-- one row per Hub repo: a candidate member of a release (conversions are dropped later, with a reason)
with models as (
    select * from stg_huggingface__models
),

-- a repo's Open LLM Leaderboard entries, per version: the best average, and whether every entry was a merge or flagged
leaderboard as (
    select
        lower(repo_id) as repo_key,
        count(*) filter (where leaderboard_version = 'v1') as v1_entries,
        count(*) filter (where leaderboard_version = 'v1' and not is_merged and not is_flagged) as v1_unmarked,
        max(average) filter (where leaderboard_version = 'v1') as v1_average,
        count(*) filter (where leaderboard_version = 'v2') as v2_entries,
        count(*) filter (where leaderboard_version = 'v2' and not is_merged and not is_flagged) as v2_unmarked,
        max(average) filter (where leaderboard_version = 'v2') as v2_average
    from stg_open_llm_leaderboard__results
    group by 1
),

final as (
    select
        'hf:' || models.repo_id as member_key,
        'huggingface' as source,
        models.repo_id as source_key,
        models.repo_id as name,
        cast(null as varchar) as organization,
        models.author as hf_author,
        cast(models.created_at as date) as released_on,
        models.first_seen_at,
        models.fetched_at as last_seen_at,
        coalesce(models.arxiv_ids, [])::varchar[] as arxiv_ids,
        []::varchar[] as linked_hf_repos,
        coalesce(models.base_models, [])::varchar[] as base_names,
        models.base_relation,
        cast(null as varchar) as domain,
        cast(null as varchar) as task,
        models.pipeline_tag,
        coalesce(models.tags, [])::varchar[] as tags,
        models.library_name,
        models.parameters,
        cast(null as double) as training_compute_flop,
        false as is_epoch_frontier,
        false as in_epoch_notable,
        cast(null as varchar) as org_categorization,
        true as is_open_weights,
        'Open weights (Hugging Face Hub)' as model_accessibility,
        models.likes,
        list_concat(
            case when models.has_model_index then ['hf_model_index'] else [] end,
            case when models.has_eval_results then ['hf_eval_results'] else [] end,
            case when leaderboard.v1_entries > 0 then ['open_llm_leaderboard_v1'] else [] end,
            case when leaderboard.v1_entries > 0 and leaderboard.v1_unmarked = 0
                then ['open_llm_leaderboard_v1_merged_or_flagged'] else [] end,
            case when leaderboard.v2_entries > 0 then ['open_llm_leaderboard_v2'] else [] end,
            case when leaderboard.v2_entries > 0 and leaderboard.v2_unmarked = 0
                then ['open_llm_leaderboard_v2_merged_or_flagged'] else [] end
        )::varchar[] as evidence,
        true as can_stand_alone,
        leaderboard.v1_average as open_llm_v1_average,
        leaderboard.v2_average as open_llm_v2_average
    from models
    left join leaderboard on leaderboard.repo_key = lower(models.repo_id)
)

select * from final
