"""Roles granted by the identity provider, beside the positions of the directory: pure data,
so domain code can judge them without importing the sign-in plumbing."""

from __future__ import annotations

from enum import StrEnum


class AppRole(StrEnum):
    """Roles granted by the identity provider, beside the positions of the directory."""

    DIRECTORY_ADMIN = "directory-admin"  # TR03: users and positions
    HR_FEED = "hr-feed"  # TR03: a service principal that feeds the directory from HR
    INTEGRATION_ADMIN = "integration-admin"  # TR06: webhooks
    OPERATOR = "operator"  # delivery records and the reminder schedule (TR05)
