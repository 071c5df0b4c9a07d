"""YAML parsing through libyaml (`yaml.CSafeLoader`) where PyYAML was built with it.

The pure-Python SafeLoader is 10-20x slower; configs, the plugin registry (read for every
`--help`) and each run's config.yaml go through `safe_load`. Same results as `yaml.safe_load`.
"""

from __future__ import annotations

from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str | bytes) -> Any:
    """`yaml.safe_load(text)`, with libyaml's parser where present."""
    return yaml.load(text, Loader=LOADER)   # LOADER is a safe loader
