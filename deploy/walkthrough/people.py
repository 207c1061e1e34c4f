"""Who acts in the walkthrough (the walkthrough directory's people, each in their primary
position), the teams they work in and the forms' answers they give."""

from __future__ import annotations

from contracts import Actor
from deploy.stack import SERVICES_DIR

DIRECTORY_FILE = SERVICES_DIR / "access" / "walkthrough_directory.json"

HUB_TEAM = "Wellbeing Service Hub Team"
NORTH_TEAM = "Wellbeing Service North Team"
APPEALS_TEAM = "team-appeals-1"
APPEALS_HOPPER = "hopper-team-appeals-1"
SPECIAL_CLIENT_TEAM = "team-special-client-1"


def seat(user: str) -> Actor:
    """The walkthrough directory's people act in their primary position `pos-<user>`."""
    return Actor(user_id=user, position_id=f"pos-{user}")


def position_of(actor: Actor) -> str:
    assert actor.position_id is not None, f"{actor.user_id} acts in no position"
    return actor.position_id


ADMIN = Actor(user_id="directory-admin")
SO_HUB, HUB_WORKER = seat("so-hub"), seat("hub-1")
SO_NORTH, SO_MGMT = seat("so-north"), seat("so-mgmt")
ASSESSOR, SUPPORT_OFFICER = seat("ta-north-1"), seat("gso-north-1")
SM_ENF, TL_ENF_1, TL_ENF_2 = seat("sm-enf"), seat("tl-enf-1"), seat("tl-enf-2")
CW_ENF_1, TL_APPEALS = seat("cw-enf-1"), seat("tl-appeals-1")
FLLS_1, FLLS_2 = seat("flls-1"), seat("flls-2")  # the access administration team (AC20)
SM_JUD_REV, TL_JUD_REV = seat("sm-jud-rev"), seat("tl-jud-rev-1")

TRIAGE_ANSWERS = {
    "reason_for_referral": "Isolated since a fall",
    "risks_identified": "Falls at night",
    "risk_level": "Medium",
    "trusted_assessment_needed": "Yes",
    "monitoring_needed": "Yes",
}
ASSESSMENT_ANSWERS = {
    "what_matters": "Staying independent at home",
    "presenting_needs": "Help with shopping and meals",
    "risks": "Falls at night",
    "support_plan": "Weekly visits from a support officer",
    "progressing_to_support_officer": "Yes",
}
DELIVERY_ANSWERS = {
    "actions_delivered": "Weekly visits arranged",
    "outcomes": "Shopping and meals in place",
    "further_support_needed": "Yes",
}
