"""The demo's Papers With Code: a replay of the catalog API's query-dependent answers over a snapshot.

It answers as huggingface/pwc-cli expects the live API to: `papers/` filtered by inclusive
publication dates, ordered, paged (1..100) with `count` and an echo of the filters in
`applied_filters`; `papers/{id}`; `evaluations/?paper_id=`; FastAPI `{"detail": ...}` errors.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flows.replay_server import DEMO_SNAPSHOT, Reply, Request

PREFIX = "/paperswithcode/api/v1"
RESOURCE_FIELDS = ("repositories", "project_pages", "hf_models", "hf_datasets", "hf_spaces")


@dataclass
class CatalogReplay:
    """A `Route` serving `papers` and `evaluations` the way the catalog API does."""

    papers: list[dict[str, Any]]
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    prefix: str = PREFIX

    def __post_init__(self) -> None:
        # Sorted once by publication date, so a date window is two bisections, not a scan.
        self.papers = sorted(self.papers, key=lambda paper: (paper.get("published") or "", int(paper["id"])))
        self._dates = [paper.get("published") or "" for paper in self.papers]

    @classmethod
    def from_snapshot(cls, folder: Path = DEMO_SNAPSHOT / "paperswithcode") -> CatalogReplay:
        return cls(
            json.loads((folder / "papers.json").read_text(encoding="utf-8")),
            json.loads((folder / "evaluations.json").read_text(encoding="utf-8")),
        )

    def __call__(self, request: Request) -> Reply:
        path = request.path.removeprefix(self.prefix).strip("/")
        query = {name: values[-1] for name, values in request.query.items()}
        if path == "papers":
            return self._papers(query)
        if path.startswith("papers/"):
            return self._paper(path.removeprefix("papers/"), query)
        if path == "evaluations":
            return self._evaluations(query)
        return _json(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})

    def _papers(self, query: dict[str, str]) -> Reply:
        page, page_size, problem = _paging(query)
        if problem:
            return problem
        start, end = query.get("start_date", ""), query.get("end_date", "9999-12-31")
        chosen = self.papers[bisect_left(self._dates, start): bisect_right(self._dates, end)]
        if query.get("order_dir") == "desc":
            chosen = chosen[::-1]
        results = chosen[(page - 1) * page_size: page * page_size]
        if query.get("include_resources") != "true":
            results = [{key: value for key, value in paper.items() if key not in RESOURCE_FIELDS} for paper in results]
        applied = {name: query[name] for name in ("start_date", "end_date") if name in query}
        return _json(HTTPStatus.OK, {"count": len(chosen), "results": results, "applied_filters": applied})

    def _paper(self, reference: str, query: dict[str, str]) -> Reply:
        for paper in self.papers:
            if reference in (paper["id"], paper.get("arxiv_id")):
                if query.get("include_resources") != "true":
                    paper = {key: value for key, value in paper.items() if key not in RESOURCE_FIELDS}
                return _json(HTTPStatus.OK, paper)
        return _json(HTTPStatus.NOT_FOUND, {"detail": "Paper not found"})

    def _evaluations(self, query: dict[str, str]) -> Reply:
        page, page_size, problem = _paging(query)
        if problem:
            return problem
        rows = [row for row in self.evaluations if row.get("paper_id") == query.get("paper_id")]
        return _json(HTTPStatus.OK, {"count": len(rows), "results": rows[(page - 1) * page_size: page * page_size]})


def _paging(query: dict[str, str]) -> tuple[int, int, Reply | None]:
    """Page and page size, or FastAPI's 422 when either is outside 1..100."""
    try:
        page, page_size = int(query.get("page", "1")), int(query.get("page_size", "20"))
    except ValueError:
        page, page_size = 0, 0
    if not (1 <= page <= 100 and 1 <= page_size <= 100):
        detail = [{"loc": ["query", "page"], "msg": "page and page_size must be 1-100", "type": "value_error"}]
        return 0, 0, _json(HTTPStatus.UNPROCESSABLE_ENTITY, {"detail": detail})
    return page, page_size, None


def _json(status: int, body: object) -> Reply:
    return Reply(status, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"})
