"""Transforms: staging, matching and labels, rebuilt from raw on every run."""
