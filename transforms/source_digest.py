"""A digest of rule modules' source code, for tables that store results keyed by the rules that made them.

Read once, as the modules are imported: a file edited while a process runs must not be mistaken
for the code that process runs, or the rows it writes would be stored under the new code's digest.
"""

from __future__ import annotations

import hashlib
import inspect
from types import ModuleType


def source_digest(*modules: ModuleType) -> str:
    """sha256 (hex) of the modules' source, concatenated in the order given."""
    source = "".join(inspect.getsource(module) for module in modules)
    return hashlib.sha256(source.encode("utf-8")).hexdigest()
