"""The organization registry: who an organization is, whatever Epoch or the Hub calls it.

A data file (`transforms/data/organizations.csv`: name, aliases, Hub namespaces, org_type) rather
than code, so an analyst can correct or extend it without touching the rules.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ORG_TYPES = ("big_tech", "ai_lab", "startup", "academic", "open_source_community", "government", "other")
REGISTRY_FILE = "data/organizations.csv"


@dataclass(frozen=True)
class Organization:
    org_id: str
    name: str
    org_type: str
    words: frozenset[str]
    """Lower-case words of its names, dropped from the front of model names (`Meta-Llama-3`)."""


@dataclass(frozen=True)
class Registry:
    by_alias: dict[str, Organization]
    by_namespace: dict[str, Organization]

    def by_name(self, name: str | None) -> Organization | None:
        return self.by_alias.get(_normal(name)) if name else None

    def by_hub_namespace(self, namespace: str | None) -> Organization | None:
        return self.by_namespace.get(namespace.lower()) if namespace else None

    def first_known(self, organizations: str | None) -> Organization | None:
        """The first organization of an Epoch list (`Hugging Face,ServiceNow`) that the registry knows."""
        if not organizations:
            return None
        whole = self.by_name(organizations)
        if whole:
            return whole
        return next((org for part in organizations.split(",") if (org := self.by_name(part))), None)


def registry_text(path: Path | None = None) -> str:
    """The registry file's text: the one shipped with the package, or another in the same format."""
    packaged = resources.files("transforms").joinpath(REGISTRY_FILE)
    return path.read_text(encoding="utf-8") if path else packaged.read_text(encoding="utf-8")


def load_registry(path: Path | None = None) -> Registry:
    """Read the registry shipped with the package, or another file in the same format."""
    text = registry_text(path)
    by_alias: dict[str, Organization] = {}
    by_namespace: dict[str, Organization] = {}
    for row in csv.DictReader(text.splitlines()):
        if row["org_type"] not in ORG_TYPES:
            raise ValueError(f"organization {row['name']!r} has org_type {row['org_type']!r}, not one of {ORG_TYPES}")
        names = [row["name"], *_split(row["aliases"])]
        namespaces = _split(row["hf_namespaces"])
        # only its names: a namespace such as `meta-llama` holds a model's name, not the organization's
        words = frozenset(word for name in names for word in re.split(r"[\s\-_.]+", name.lower()) if word)
        org = Organization(row["org_id"], row["name"], row["org_type"], words)
        for name in names:
            by_alias.setdefault(_normal(name), org)
        for namespace in namespaces:
            by_namespace.setdefault(namespace.lower(), org)
    return Registry(by_alias, by_namespace)


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split("|") if part.strip()]


def _normal(name: str) -> str:
    return " ".join(name.lower().split())
