"""Reading the configuration: what `config_from_dict` refuses."""

from __future__ import annotations

import pytest

from bridge.config import config_from_dict
from bridge.errors import ConfigError


def test_papers_and_methods_folders_must_differ() -> None:
    with pytest.raises(ConfigError, match="must be different"):
        config_from_dict({"papers_folder": "Notes", "methods_folder": "notes"})
