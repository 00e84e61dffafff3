"""`transforms.build_releases._member`: a member from its row's JSON text, as DuckDB's own conversion gives it."""

from __future__ import annotations

import math
from dataclasses import astuple

import duckdb

from transforms.build_releases import _member
from transforms.releases import Member

ROW = """select 'hf:a/b' as member_key, 'huggingface', 'a/b', 'Modèle "β" \\ 中 😀' || chr(0), null, 'a', {day}::date,
    1795920465950709::bigint, null::bigint, ['2307.09288'], []::varchar[], null::varchar[], null, 'Language, Vision',
    null, 'text-generation', ['region:us', 'é'], null, 70000000000::bigint, {compute}::double, true, false, null, true,
    null, 12::bigint, ['model_index'], true, {average}::double, null::double, 18446744073709551615::ubigint"""


def test_a_member_comes_back_value_for_value_whatever_its_values() -> None:
    """Dates at both ends, text of every kind, NULLs, the largest digest, and NaN and infinities (`NaN` in the
    text, which orjson does not read) come back as DuckDB hands them over."""
    con = duckdb.connect()
    for day, compute, average in [("'2023-07-18'", "3.1e24", "0.1"), ("'0001-01-01'", "'nan'", "'inf'"),
                                  ("'9999-12-31'", "'-inf'", "null"), ("null", "null", "-0.0")]:
        query = ROW.format(day=day, compute=compute, average=average)
        expected = Member(*con.execute(query).fetchone())
        (text,) = con.execute(f"select to_json(row(*columns(*)))::varchar from ({query})").fetchone()
        assert values(_member(text)) == values(expected)


def values(member: Member) -> list[tuple[type, object]]:
    """A member's values with their types (`==` alone holds 3 equal to 3.0), NaN as a string to compare."""
    return [(type(value), "NaN" if isinstance(value, float) and math.isnan(value) else value) for value in astuple(member)]
