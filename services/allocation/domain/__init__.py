"""Allocation's domain: the work item aggregate (work_item.py) and the rules it decides by
(rules.py). Pure: it imports contracts, the shared `Position` and `RuleViolation`, and its own
modules, and does no I/O (tests/allocation/test_domain_is_pure.py)."""

from services.allocation.domain.rules import *  # noqa: F403
from services.allocation.domain.work_item import Change as Change
from services.allocation.domain.work_item import History as History
from services.allocation.domain.work_item import WorkItem as WorkItem
from services.allocation.domain.work_item import owner_text as owner_text
from services.allocation.domain.work_item import unit_of as unit_of
