-- one row per leaderboard entry: (leaderboard version, Hub repo, precision, model sha), its latest landed version
-- v1 (2023 to June 2024) scored ARC, HellaSwag, MMLU, TruthfulQA, Winogrande, GSM8K; v2 (June 2024 to March 2025)
-- IFEval, BBH, MATH Lvl 5, GPQA, MUSR, MMLU-PRO (normalized scores, 0-100). Columns a version lacks are null.
with latest as (
    select source_key, payload, fetched_at
    from raw_open_llm_leaderboard__results_latest
),

fields as (
    select
        source_key,
        split_part(source_key, ':', 1) as leaderboard_version,
        trim(payload ->> 'fullname') as repo_id,
        payload ->> 'Precision' as precision,
        nullif(payload ->> 'Model sha', '') as model_sha,
        payload ->> 'Type' as model_type_label,
        nullif(payload ->> 'Weight type', '') as weight_type,
        nullif(payload ->> 'Architecture', '') as architecture,
        try_cast(payload ->> '#Params (B)' as double) as params_billions,
        try_cast(payload ->> 'Average ⬆️' as double) as average,
        try_cast(payload ->> 'ARC' as double) as arc,
        try_cast(payload ->> 'HellaSwag' as double) as hellaswag,
        try_cast(payload ->> 'MMLU' as double) as mmlu,
        try_cast(payload ->> 'TruthfulQA' as double) as truthfulqa,
        try_cast(payload ->> 'Winogrande' as double) as winogrande,
        try_cast(payload ->> 'GSM8K' as double) as gsm8k,
        try_cast(payload ->> 'IFEval' as double) as ifeval,
        try_cast(payload ->> 'BBH' as double) as bbh,
        try_cast(payload ->> 'MATH Lvl 5' as double) as math_lvl5,
        try_cast(payload ->> 'GPQA' as double) as gpqa,
        try_cast(payload ->> 'MUSR' as double) as musr,
        try_cast(payload ->> 'MMLU-PRO' as double) as mmlu_pro,
        coalesce(try_cast(payload ->> 'Merged' as boolean), false) as is_merged,
        coalesce(try_cast(payload ->> 'Flagged' as boolean), false) as is_flagged,
        coalesce(try_cast(payload ->> 'MoE' as boolean), false) as is_moe,
        try_cast(payload ->> 'Available on the hub' as boolean) as is_available_on_hub,
        -- v2 keeps `Submission Date` (YYYY-MM-DD); v1 a `date` (the request's submission time)
        coalesce(
            try_cast(payload ->> 'Submission Date' as date),
            try_cast(try_cast(payload ->> 'date' as timestamptz) as date),
            try_cast(payload ->> 'date' as date)
        ) as submitted_on,
        try_cast(payload ->> 'Upload To Hub Date' as date) as uploaded_on,
        fetched_at
    from latest
),

final as (
    select
        source_key,
        leaderboard_version,
        repo_id,
        precision,
        model_sha,
        -- the leaderboard's own type, without its emoji: `🔶 fine-tuned on domain-specific datasets` -> fine_tuned
        case
            when model_type_label ilike '%continuously pretrained%' then 'continuously_pretrained'
            when model_type_label ilike '%pretrained%' then 'pretrained'
            when model_type_label ilike '%fine-tuned%' or model_type_label ilike '%finetuned%' then 'fine_tuned'
            when model_type_label ilike '%chat%' or model_type_label ilike '%instruction-tuned%' then 'chat'
            when model_type_label ilike '%merge%' then 'merge'
            when model_type_label ilike '%multimodal%' then 'multimodal'
            when model_type_label is null or trim(model_type_label) = '' then null
            else 'other'
        end as model_type,
        model_type_label,
        weight_type,
        architecture,
        -- a size or score the leaderboard could not have published (10^30, negative) is an error, not a value
        case when params_billions between 0 and 100000 then params_billions end as params_billions,
        case when average between 0 and 100 then average end as average,
        case when arc between 0 and 100 then arc end as arc,
        case when hellaswag between 0 and 100 then hellaswag end as hellaswag,
        case when mmlu between 0 and 100 then mmlu end as mmlu,
        case when truthfulqa between 0 and 100 then truthfulqa end as truthfulqa,
        case when winogrande between 0 and 100 then winogrande end as winogrande,
        case when gsm8k between 0 and 100 then gsm8k end as gsm8k,
        case when ifeval between 0 and 100 then ifeval end as ifeval,
        case when bbh between 0 and 100 then bbh end as bbh,
        case when math_lvl5 between 0 and 100 then math_lvl5 end as math_lvl5,
        case when gpqa between 0 and 100 then gpqa end as gpqa,
        case when musr between 0 and 100 then musr end as musr,
        case when mmlu_pro between 0 and 100 then mmlu_pro end as mmlu_pro,
        is_merged or coalesce(model_type_label ilike '%merge%', false) as is_merged,
        is_flagged,
        is_moe,
        is_available_on_hub,
        submitted_on,
        uploaded_on,
        fetched_at
    from fields
    where repo_id is not null and repo_id <> ''
)

select * from final
