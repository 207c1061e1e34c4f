"""`casework walkthrough`: both seed procedures end to end over Kafka, against the four services
running as their own processes.

The Wellbeing referral (seed 000): triage in the Hub Team finished into the Trusted Assessment,
which is refused without `Involved Worker` and then allocated, sign-off with a next action to a
Generic Support Officer, and a returned request. The agency's secondary access (seed 003):
standing absence-related access, an emergency grant and its later P30, hierarchical access to
Appeals and its removal with the held work moved back to the hopper. Each step checks what it
expects on the event topics, through the read APIs, and in the inboxes of the people the
notifications service must tell. Nothing is assumed: a step whose outcome is not observed in time
fails, and so does every later step of its procedure.

The package: `driver` (send as a signed-in person, wait for what follows), `people` (who acts),
one module per procedure with its typed state (`wellbeing`, `agency`), `runner` (the procedures
in order against a running stack), `report` (results and the summary) and `lifecycle` (the
walkthrough's own stack).
"""

from deploy.walkthrough.lifecycle import run
from deploy.walkthrough.procedure import Procedure
from deploy.walkthrough.report import Result, summary_table
from deploy.walkthrough.runner import PROCEDURES, scenario, walk

__all__ = ["PROCEDURES", "Procedure", "Result", "run", "scenario", "summary_table", "walk"]
