"""The test infrastructure lives in the installable `casework_testing` package (downstream
teams' tests use it through its pytest plugin); these names stay importable from here."""

from casework_testing.infra import Infra, infrastructure, isolated_infrastructure

__all__ = ["Infra", "infrastructure", "isolated_infrastructure"]
