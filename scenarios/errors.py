"""The errors the scenarios raise.

    ScenarioError                    base of everything below
    ├── ScenarioConfigError          a bad shapes/workload/fixtures file or command-line value
    └── ProvisioningError            the target refused to create the data the scenarios need

Every message names the bad value and says how to fix it.
"""

from __future__ import annotations

__all__ = ["ProvisioningError", "ScenarioConfigError", "ScenarioError"]


class ScenarioError(Exception):
    """Base class of the scenarios' own errors."""


class ScenarioConfigError(ScenarioError, ValueError):
    """A configuration file or command-line value is unusable."""


class ProvisioningError(ScenarioError):
    """Creating users, teams, projects or grants through the API failed."""
