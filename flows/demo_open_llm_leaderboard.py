"""The Open LLM Leaderboard archives, replayed as the Hub serves dataset files.

Two answers are enough for `huggingface_hub`: `GET /api/datasets/<repo>` (the commit and the
files, what `HfApi.dataset_info` reads) and `HEAD`/`GET /datasets/<repo>/resolve/<revision>/<file>`
with the `X-Repo-Commit` and `ETag` headers `hf_hub_download` needs. Each repo's commit is derived
from its files' bytes, so it changes exactly when the snapshot's files do.
"""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote

from flows.replay_server import DEMO_SNAPSHOT, Reply, Request, Route
from sources.open_llm_leaderboard import ARCHIVES

DATASETS = DEMO_SNAPSHOT / "huggingface" / "datasets"
JSON = {"Content-Type": "application/json; charset=utf-8"}


class DatasetReplay:
    """Serves the dataset repos found under `root` (`<owner>/<name>/<files>`), at `prefix`."""

    def __init__(self, root: Path = DATASETS, prefix: str = "/huggingface", repos: tuple[str, ...] = tuple(ARCHIVES.values())) -> None:
        self.root, self.prefix = root, prefix
        self.files = {repo: sorted(path.relative_to(root / repo).as_posix() for path in (root / repo).rglob("*") if path.is_file())
                      for repo in repos if (root / repo).is_dir()}
        self.commits = {repo: self._commit(repo, names) for repo, names in self.files.items()}

    def routes(self) -> dict[str, Route]:
        return {f"{self.prefix}/api/datasets/": self.info, f"{self.prefix}/datasets/": self.resolve}

    def info(self, request: Request) -> Reply:
        repo = request.path.removeprefix(f"{self.prefix}/api/datasets/").split("/revision/")[0].strip("/")
        if repo not in self.files:
            return _not_found("RepoNotFound", "Repository not found")
        body = {"id": repo, "sha": self.commits[repo], "private": False, "disabled": False, "gated": False,
                "siblings": [{"rfilename": name} for name in self.files[repo]]}
        return Reply(HTTPStatus.OK, json.dumps(body).encode(), dict(JSON))

    def resolve(self, request: Request) -> Reply:
        rest = unquote(request.path.removeprefix(f"{self.prefix}/datasets/"))
        repo, _, tail = rest.partition("/resolve/")
        revision, _, name = tail.partition("/")
        if repo not in self.files or revision not in ("main", self.commits[repo]) or name not in self.files[repo]:
            return _not_found("EntryNotFound", "Entry not found")
        body = (self.root / repo / name).read_bytes()
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": self.commits[repo],
                   "ETag": '"' + hashlib.sha256(body).hexdigest() + '"'}
        return Reply(HTTPStatus.OK, body, headers)

    def _commit(self, repo: str, names: list[str]) -> str:
        digest = hashlib.sha1()
        for name in names:
            digest.update(name.encode() + b"\0" + (self.root / repo / name).read_bytes())
        return digest.hexdigest()


def _not_found(code: str, message: str) -> Reply:
    return Reply(HTTPStatus.NOT_FOUND, json.dumps({"error": message}).encode(), {**JSON, "X-Error-Code": code})
