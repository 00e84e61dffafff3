"""Parquet files of a Hub dataset at one commit, through `huggingface_hub`: what the archive sources share.

The Open LLM Leaderboard and the Papers With Code archives are finished datasets: one `dataset_info`
GET names the commit and the files (`siblings`), so "unchanged since the last import" costs one small
request, and the files are downloaded only when the commit moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sources import polite_http
from sources.records import SourceError, SourceUnavailable


@dataclass(frozen=True)
class DatasetRevision:
    """One dataset at one commit: the parquet files it lists."""

    repo: str
    commit: str
    files: tuple[str, ...]


def dataset_revision(
    endpoint: str, token: str | None, repo: str, *, under: str = "", timeout: float = polite_http.TIMEOUT_SECONDS
) -> DatasetRevision:
    """The dataset's current commit and its parquet files (those under `under`, when given).

    A repo that is gone (404/410) or lists no parquet is `SourceUnavailable`; any other failure is a
    `SourceError` naming the repo. `timeout` bounds the request (the client's own default is 10 s).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    url = polite_http.redact(f"{endpoint.rstrip('/')}/api/datasets/{repo}")
    try:
        api = HfApi(endpoint=endpoint, token=token or False, library_name="model-census")
        info = api.dataset_info(repo, timeout=timeout)
    except RepositoryNotFoundError as exc:
        raise SourceUnavailable(f"archive {repo}: not on the Hub any more ({_first_line(exc)})", url=url) from exc
    except HfHubHTTPError as exc:
        if exc.response is not None and exc.response.status_code in (404, 410):
            # A plain 404 (no Hub error code): the endpoint has no such dataset; it moved or retired.
            raise SourceUnavailable(f"archive {repo}: HTTP {exc.response.status_code}", url=url) from exc
        raise SourceError(f"archive {repo}: {failure_reason(exc)}", url=url) from exc
    except Exception as exc:  # the client raises httpx, OS and its own errors; one message for all
        raise SourceError(f"archive {repo}: {failure_reason(exc)}", url=url) from exc
    if not info.sha:
        raise SourceUnavailable(f"archive {repo}: the Hub named no commit", url=url)
    files = tuple(sorted(sibling.rfilename for sibling in info.siblings or ()
                         if sibling.rfilename.startswith(under) and sibling.rfilename.endswith(".parquet")))
    if not files:
        where = f" under {under}" if under else ""
        raise SourceUnavailable(f"archive {repo}: no parquet file{where} at {info.sha}", url=url)
    return DatasetRevision(repo, info.sha, files)


def download_files(
    endpoint: str,
    token: str | None,
    revision: DatasetRevision,
    folder: Path,
    *,
    timeout: float = polite_http.TIMEOUT_SECONDS,
) -> list[Path]:
    """Download the revision's files at its commit into `folder` (not the shared Hub cache): HEAD + GET each.

    `timeout` bounds each HEAD; the body's reads keep the client's own bound (`HF_HUB_DOWNLOAD_TIMEOUT`, 10 s
    between two reads), which `hf_hub_download` takes from the environment only.
    """
    from huggingface_hub import hf_hub_download

    paths = []
    for filename in revision.files:
        try:
            path = hf_hub_download(revision.repo, filename, repo_type="dataset", revision=revision.commit,
                                   endpoint=endpoint, token=token or False, local_dir=folder,
                                   etag_timeout=timeout)
        except Exception as exc:  # every failure to get the file means "not loaded this run"
            raise SourceError(f"archive {revision.repo}/{filename}: {failure_reason(exc)}",
                              url=polite_http.redact(f"{endpoint.rstrip('/')}/datasets/{revision.repo}")) from exc
        paths.append(Path(path))
    return paths


def failure_reason(exc: BaseException) -> str:
    """One line on a failed call: an unreachable host says so plainly, anything else names its type."""
    return polite_http.unreachable_reason(exc) or f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
