"""The one settings object of a run, read from `MODEL_CENSUS_*` environment variables.

Built once per run by the flows and handed down as plain values: sources and transforms never read
the environment themselves, so tests point them anywhere by passing arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from sources.polite_http import TIMEOUT_SECONDS
from transforms.build_releases import ReleaseInputs
from transforms.releases import ReleaseOptions

MEMORY_SIZE = r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$"
"""A size DuckDB's `memory_limit` accepts, e.g. `128MB` or `2GiB`."""


class Settings(BaseSettings):
    """Every knob of model-census; each one is documented in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="MODEL_CENSUS_", extra="ignore")

    db: Path = Field(
        Path("data/census.duckdb"),
        description="Published warehouse analysts query; the pipeline writes a private working copy beside it.",
    )
    epoch_url: str = Field(
        "https://epoch.ai/data/ai_models.zip",
        description="Epoch AI's zip of model CSVs, or the URL of one CSV.",
    )
    hf_url: str = Field("https://huggingface.co", description="Hugging Face Hub endpoint.")
    hf_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("HF_TOKEN", "MODEL_CENSUS_HF_TOKEN"),
        description="Optional Hub token (raises the rate limit); never logged or stored.",
    )
    hf_refresh_days: int = Field(90, ge=0, description="Re-read likes and downloads of models created this many days back.")
    hf_max_requests: int = Field(400, ge=1, description="Most Hub API requests one run may make.")
    hf_backfill_via: Literal["api", "hub-stats", "auto"] = Field(
        "auto", description="How a Hub backfill reads old windows."
    )
    hf_lookback_days: int = Field(3, ge=1, description="First-run look-back of the Hub source, in days.")
    arxiv_url: str = Field("https://export.arxiv.org/api/query", description="arXiv API query endpoint.")
    arxiv_rss_url: str = Field("https://rss.arxiv.org/rss/", description="arXiv RSS announcements base URL.")
    arxiv_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.SD", "eess.AS", "stat.ML"],
        description="arXiv categories to read, comma-separated.",
    )
    arxiv_delay_seconds: float = Field(3.0, ge=0, description="Seconds between two arXiv requests.")
    arxiv_lookback_days: int = Field(7, ge=1, description="First-run look-back of the arXiv source, in days.")
    pwc_url: str = Field("https://paperswithcode.co/api/v1", description="Papers With Code API base URL.")
    pwc_max_per_minute: int = Field(60, ge=1, description="Most Papers With Code requests a minute.")
    pwc_max_requests: int = Field(2000, ge=1, description="Most Papers With Code API requests one run may make.")
    pwc_rescan_days: int = Field(14, ge=0, description="Trailing days of Papers With Code re-scanned each night.")
    pwc_lookback_days: int = Field(30, ge=1, description="First-run look-back of Papers With Code, in days.")
    pwc_import_archive: bool = Field(True, description="A backfill also imports the pwc-archive datasets from the Hub, once.")
    notable_min_likes: int = Field(100, ge=0, description="Hub likes that make a family notable.")
    include_merges: bool = Field(False, description="Count model merges as releases.")
    overrides_csv: Path | None = Field(
        None, description="Analysts' overrides CSV (label, merge, split); the packaged, empty one when unset."
    )
    http_timeout_seconds: float = Field(TIMEOUT_SECONDS, gt=0, description="Timeout of one HTTP request.")
    lock_wait_seconds: float = Field(
        600.0, ge=0, description="How long a run waits for another run to finish writing before it gives up."
    )
    task_timeout_seconds: float = Field(6 * 3600.0, gt=0, description="Longest one source's ingest task may run before it is stopped as failed.")
    task_retries: int = Field(2, ge=0, description="Retries of a source's ingest task after a transient failure (connection, timeout, 429, 5xx).")
    task_retry_delay_seconds: float = Field(
        60.0, ge=0, description="First delay before such a retry; it doubles each time, each delay drawn between "
        "0.63 and 1.5 times that (Prefect's jitter, same average).")

    ingest_memory_limit: str = Field(
        "128MB", pattern=MEMORY_SIZE, description="DuckDB's memory limit while pages land (it spills past it, to disk)."
    )
    rebuild_memory_limit: str = Field(
        "2GB", pattern=MEMORY_SIZE, description="DuckDB's memory limit while the curated tables are rebuilt."
    )

    @field_validator("arxiv_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        """Environment variables carry lists as `cs.CL,cs.LG`."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("db")
    @classmethod
    def _db_names_a_file(cls, value: Path) -> Path:
        """The work database, its lock and the publishing copy are written beside it, named after it."""
        if not value.name or value.name in (".", "..") or value.is_dir():
            raise ValueError(f"MODEL_CENSUS_DB must name a file, not {str(value)!r}: e.g. data/census.duckdb")
        work = work_db_path(value)
        for written in (work, work.with_name(work.name + ".wal"), work.with_name(work.name + ".lock")):
            # Opened in place (not replaced), so a link planted there would be written through, elsewhere.
            if written.is_symlink() and written.resolve().parent != value.parent.resolve():
                raise ValueError(f"MODEL_CENSUS_DB: refusing to write {written}: it links to {written.resolve()}, "
                                 f"outside {value.parent.resolve()}")
        return value

    @property
    def work_db(self) -> Path:
        """The pipeline's private database: raw tables and state live here, analysts never open it."""
        return work_db_path(self.db)

    def release_inputs(self) -> ReleaseInputs:
        """What the release rules take from the settings."""
        return ReleaseInputs(
            options=ReleaseOptions(notable_min_likes=self.notable_min_likes, include_merges=self.include_merges),
            overrides_path=self.overrides_csv,
        )

    def token_value(self) -> str | None:
        """The Hub token for the client call that needs it, and nowhere else."""
        return self.hf_token.get_secret_value() if self.hf_token else None


def work_db_path(db: Path) -> Path:
    """`data/census.work.duckdb` for `data/census.duckdb`: the work database sits beside the published one."""
    return db.with_name(db.stem + ".work" + db.suffix)
