"""The Hub's model listing, replayed: `GET .../api/models` newest first, paged by cursor like the real one.

The real Hub pages with an opaque `cursor` in an absolute `Link: <...>; rel="next"` URL and no link
on the last page; the cursor marks a position (creation time, id) rather than an offset, so models
created while a client is listing do not shift the pages it has yet to read. This replay does the
same over a list of model records, so the demo (and the acceptance tests) run the real client code.
`expand` is honoured as the Hub does: only the fields asked for, plus `_id` and `id`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode

from flows.replay_server import DEMO_SNAPSHOT, Reply, Request, Route

DEMO_MODELS = DEMO_SNAPSHOT / "huggingface" / "models.json"
MAX_PAGE = 1_000


def _position(model: dict) -> tuple[str, str]:
    return (str(model.get("createdAt") or ""), str(model.get("id") or ""))


@dataclass
class HubReplay:
    """A Hub holding `models`; tests may add models or change likes between runs."""

    models: list[dict] = field(default_factory=list)
    prefix: str = ""
    requests: list[str] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path = DEMO_MODELS, prefix: str = "/huggingface") -> HubReplay:
        return cls(json.loads(path.read_text(encoding="utf-8")), prefix)

    def add(self, models: Iterable[dict]) -> None:
        self.models.extend(models)

    def routes(self) -> dict[str, Route]:
        """Route prefixes for `ReplayServer`: the listing, and the client's agent-registry call (404)."""
        return {f"{self.prefix}/api/models": self.listing, f"{self.prefix}/api/agent-harnesses": self.not_found,
                "/api/agent-harnesses": self.not_found}

    def not_found(self, request: Request) -> Reply:
        return Reply(HTTPStatus.NOT_FOUND, b'{"error":"not found"}', {"Content-Type": "application/json"})

    def listing(self, request: Request) -> Reply:
        self.requests.append(request.path)
        if request.path.rstrip("/") != f"{self.prefix}/api/models":
            return self.not_found(request)
        if request.query.get("sort", ["createdAt"])[0] != "createdAt":
            return Reply(HTTPStatus.BAD_REQUEST, b'{"error":"this replay sorts by createdAt only"}',
                         {"Content-Type": "application/json"})
        limit = min(int(request.query.get("limit", [str(MAX_PAGE)])[0]), MAX_PAGE)
        expand = request.query.get("expand")
        ordered = sorted(self.models, key=_position, reverse=True)
        cursor = request.query.get("cursor", [None])[0]
        if cursor:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))
            except ValueError:
                return Reply(HTTPStatus.BAD_REQUEST, b'{"error":"Invalid cursor"}', {"Content-Type": "application/json"})
            ordered = [model for model in ordered if _position(model) < after]
        page = ordered[:limit]
        body = [self._shape(model, expand) for model in page]
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if len(ordered) > limit:
            token = base64.urlsafe_b64encode(json.dumps(list(_position(page[-1]))).encode()).decode()
            query = {key: values for key, values in request.query.items() if key != "cursor"}
            query["cursor"] = [token]
            headers["Link"] = f'<{request.base_url}{request.path}?{urlencode(query, doseq=True)}>; rel="next"'
        return Reply(HTTPStatus.OK, json.dumps(body).encode(), headers)

    @staticmethod
    def _shape(model: dict, expand: list[str] | None) -> dict:
        if not expand:
            return model
        return {key: value for key, value in model.items() if key in ("_id", "id") or key in expand}
