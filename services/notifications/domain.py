"""Notification rules as pure functions: no I/O, no clock reads (time comes in as arguments).

Who is told what (NT01-NT06), on which channels, and how deliveries are identified, retried and
parked (NT07); who may register, remove and replay webhooks, and which targets and addresses a
webhook may have (TR06). The handlers resolve recipients from the projections and call these
functions."""

from __future__ import annotations

import calendar
import ipaddress
import urllib.parse
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from contracts import Event
from contracts.notifications import (
    Channel,
    NotificationFailed,
    NotificationParked,
    NotificationSent,
)
from services.shared import working_days
from services.shared.roles import AppRole
from services.shared.rules import RuleViolation

# Roles that are "the TL/SM responsible" for a user (NT04, NT05) and that receive a team's
# incoming requests (NT02).
MANAGER_ROLES = frozenset({"team leader", "segment manager"})
SENIOR_OFFICER = "Senior Officer"
USER_CHANNELS = frozenset({Channel.INBOX, Channel.EMAIL})
DEFAULT_CHANNELS = USER_CHANNELS

# NT04: until an emergency grant's P30 arrives (its deadline is set by the access service, AC11)
# the user and the TL/SM responsible are reminded every interval; once overdue it escalates.
P30_REMINDER_INTERVAL = timedelta(days=1)
# NT05 (AC09): absence-related access is reviewed at least every six months; the review is
# announced REVIEW_NOTICE_WORKING_DAYS working days (DL03) before it falls due, again when it is
# due, and escalated REVIEW_GRACE after that.
REVIEW_MONTHS = 6
REVIEW_NOTICE_WORKING_DAYS = 10
REVIEW_GRACE = timedelta(days=7)


class Kind:
    """Notification kinds; webhooks register for these (or `*`)."""

    WORK_LANDED = "work_landed"  # NT01
    REQUEST_ARRIVED = "request_arrived"  # NT02
    REQUEST_RETURNED = "request_returned"  # NT03
    EMERGENCY_GRANTED = "emergency_access_granted"  # NT04
    EMERGENCY_SCHEDULED = "emergency_access_scheduled"  # NT04, AC21: the access team's time scale
    P30_REFUSED = "p30_refused"  # AC20: the access team refused a P30
    P30_REMINDER = "p30_reminder"  # NT04
    P30_OVERDUE = "p30_overdue"  # NT04
    REVIEW_UPCOMING = "review_upcoming"  # NT05
    REVIEW_DUE = "review_due"  # NT05
    REVIEW_OVERDUE = "review_overdue"  # NT05
    ACCESS_GRANTED = "secondary_access_granted"  # NT06
    ACCESS_REMOVED = "secondary_access_removed"  # NT06
    WORK_DUE = "work_due"  # DL02
    WORK_OVERDUE = "work_overdue"  # DL02
    RECORD_INVOLVED_WORKER = "record_involved_worker"  # SO10, AL11


@dataclass(frozen=True)
class Notice:
    """What to tell people: one notice, several recipients."""

    kind: str
    rule: str
    subject: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str | None = None
    channels: frozenset[str] = DEFAULT_CHANNELS


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    event_types: frozenset[str]

    def wants(self, kind: str) -> bool:
        return "*" in self.event_types or kind in self.event_types


@dataclass(frozen=True)
class Delivery:
    """One notice to one recipient on one channel; its id is derived from (source, recipient,
    channel, kind), so planning the same source event twice yields the same rows (NT07)."""

    delivery_id: uuid.UUID
    recipient_id: str
    channel: str
    kind: str
    rule: str
    subject: str
    body: str
    target: str | None  # e-mail address or webhook URL; None for the inbox
    data: dict[str, Any]
    waiting: bool = False  # for a position nobody is known to hold yet (see `waiting_for`)


def delivery_id(source_id: uuid.UUID, recipient_id: str, channel: str, kind: str) -> uuid.UUID:
    """NT07: the identity of a delivery; also its e-mail Message-ID and webhook idempotency key."""
    return uuid.uuid5(source_id, f"{recipient_id}|{channel}|{kind}")


WAITING_PREFIX = "position:"


def waiting_for(position_id: str) -> str:
    """A recipient named by a position the directory projection does not know yet (events of
    different topics arrive in any order). The notice waits, parked and visible, and is
    delivered to the holder when the position's grant arrives (NT07: never silently dropped)."""
    return f"{WAITING_PREFIX}{position_id}"


def plan_deliveries(
    source_id: uuid.UUID,
    notice: Notice,
    recipients: Iterable[Recipient],
    webhooks: Iterable[Webhook] = (),
    waiting: Iterable[str] = (),
) -> list[Delivery]:
    """NT07: one delivery per recipient and channel. The inbox is always used, so a notice is
    never silently dropped; e-mail when the user wants it and has an address; each webhook
    registered for the notice's kind gets one delivery naming every recipient. A position
    nobody is known to hold gets one waiting delivery (see `waiting_for`)."""
    seen: dict[str, Recipient] = {}
    for recipient in recipients:
        seen.setdefault(recipient.user_id, recipient)  # one user through two positions: once
    planned: list[Delivery] = []

    def add(
        recipient_id: str,
        channel: str,
        target: str | None,
        data: dict[str, Any],
        waiting: bool = False,
    ) -> None:
        planned.append(
            Delivery(
                delivery_id=delivery_id(source_id, recipient_id, channel, notice.kind),
                recipient_id=recipient_id,
                channel=channel,
                kind=notice.kind,
                rule=notice.rule,
                subject=notice.subject,
                body=notice.body,
                target=target,
                data=data,
                waiting=waiting,
            )
        )

    for recipient in seen.values():
        add(recipient.user_id, Channel.INBOX, None, notice.data)
        if Channel.EMAIL in recipient.channels and recipient.email:
            add(recipient.user_id, Channel.EMAIL, recipient.email, notice.data)
    for position in dict.fromkeys(waiting):
        add(position, Channel.INBOX, None, notice.data, waiting=True)
    if seen:
        for hook in webhooks:
            if hook.wants(notice.kind):
                data = {**notice.data, "recipients": sorted(seen)}
                add(hook.webhook_id, Channel.WEBHOOK, hook.url, data)
    return planned


WAITING_ERROR = "no user is known to hold this position yet; delivered when one is"


@dataclass(frozen=True)
class Waiting:
    """A planned notice parked for a position nobody was known to hold (NT07)."""

    delivery_id: uuid.UUID
    source_id: uuid.UUID
    correlation_id: uuid.UUID | None
    notice: Notice


def delivery_events(new: Iterable[Delivery]) -> list[Event]:
    """NT07: what the planning itself publishes: an inbox delivery is sent by its very write,
    a waiting one is parked until the position's holder is known; e-mail and webhooks are
    told by the delivery worker when it sends them."""
    events: list[Event] = []
    for d in new:
        if d.waiting:
            events.append(
                NotificationParked(
                    notification_id=d.delivery_id,
                    recipient_id=d.recipient_id,
                    channel=d.channel,
                    reason=WAITING_ERROR,
                )
            )
        elif d.channel == Channel.INBOX:
            events.append(
                NotificationSent(
                    notification_id=d.delivery_id,
                    recipient_id=d.recipient_id,
                    channel=d.channel,
                    kind=d.kind,
                    rule=d.rule,
                )
            )
    return events


@dataclass(frozen=True)
class Attempt:
    """An e-mail or webhook delivery as the worker sends it."""

    delivery_id: uuid.UUID
    recipient_id: str
    channel: str
    kind: str
    rule: str
    attempts: int  # before this one


@dataclass(frozen=True)
class AttemptOutcome:
    """What an attempt changes on the delivery (`values`) and the event it publishes."""

    values: dict[str, Any]
    event: Event


def attempt_outcome(
    attempt: Attempt, error: str | None, *, refused: bool, policy: RetryPolicy, now: datetime
) -> AttemptOutcome:
    """NT07: sent; or failed and tried again later (exponential backoff); or parked after the
    limit, for an operator to replay (never dropped). TR06: a refused target (or a removed
    webhook) is parked at once, not retried."""
    if error is None:
        return AttemptOutcome(
            {"status": "sent", "sent_at": now, "last_error": None},
            NotificationSent(
                notification_id=attempt.delivery_id,
                recipient_id=attempt.recipient_id,
                channel=attempt.channel,
                kind=attempt.kind,
                rule=attempt.rule,
            ),
        )
    attempts = attempt.attempts + 1
    retry_at = None if refused else policy.after_failure(attempts, now)
    if retry_at is None:
        return AttemptOutcome(
            {"status": "parked", "attempts": attempts, "last_error": error},
            NotificationParked(
                notification_id=attempt.delivery_id,
                recipient_id=attempt.recipient_id,
                channel=attempt.channel,
                reason=error,
            ),
        )
    return AttemptOutcome(
        {"attempts": attempts, "next_attempt_at": retry_at, "last_error": error},
        NotificationFailed(
            notification_id=attempt.delivery_id,
            recipient_id=attempt.recipient_id,
            channel=attempt.channel,
            attempt=attempts,
            reason=error,
        ),
    )


def check_preferences(
    actor_user_id: str | None, user_id: str, channels: Sequence[str]
) -> list[str]:
    """A user sets their own channels; the inbox cannot be switched off (NT07: a notification is
    never silently dropped). Returns the channels to keep, inbox first."""
    if actor_user_id != user_id:
        raise RuleViolation("actor-token", "a user sets only their own channel preferences")
    unknown = set(channels) - USER_CHANNELS
    if unknown:
        raise RuleViolation(
            "NT07", f"channels {sorted(unknown)} are not user channels; choose from inbox, email"
        )
    if Channel.INBOX not in channels:
        raise RuleViolation(
            "NT07", "the in-app inbox cannot be switched off: a notification is never dropped"
        )
    return [Channel.INBOX, *sorted(set(channels) - {Channel.INBOX})]


# --- retries (NT07) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff after the `attempts`-th failed attempt."""
        return timedelta(
            seconds=min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
        )

    def after_failure(self, attempts: int, now: datetime) -> datetime | None:
        """NT07: when to try again after `attempts` failures, or None: park it (an operator sees
        and replays it; it is never dropped)."""
        if attempts >= self.max_attempts:
            return None
        return now + self.delay(attempts)


# --- what each rule tells whom -----------------------------------------------------------------


def work_landed(
    *, work_item_id: uuid.UUID, person_id: str, what: str, how: str, note: str = ""
) -> Notice:
    """NT01: work landed in a worker's incoming work (assignment, bulk assignment, reassignment,
    next action sent)."""
    body = f"{what} for person {person_id} is now in your incoming work ({how})."
    if note:
        body += f"\nNote: {note}"
    return Notice(
        Kind.WORK_LANDED,
        "NT01",
        f"New work: {what}",
        body,
        {"work_item_id": str(work_item_id), "person_id": person_id, "how": how, "note": note},
    )


def bulk_landed(*, items: Sequence[tuple[uuid.UUID, str, str]], how: str, note: str) -> Notice:
    """NT01: several items landed in a worker's incoming work at once (bulk assignment, AL08;
    an absent caseworker's cases, AC07): one notice naming every item."""
    lines = [f"- {what} for person {person} ({item})" for item, person, what in items]
    body = f"{len(items)} items are now in your work ({how}):\n" + "\n".join(lines)
    if note:
        body += f"\nNote: {note}"
    return Notice(
        Kind.WORK_LANDED,
        "NT01",
        f"New work: {len(items)} items",
        body,
        {"work_item_ids": [str(i) for i, _, _ in items], "how": how, "note": note},
    )


def request_arrived(*, request_id: uuid.UUID, person_id: str, title: str, team: str) -> Notice:
    """NT02: a request arrived in a team's incoming requests; its Senior Officers are told."""
    return Notice(
        Kind.REQUEST_ARRIVED,
        "NT02",
        f"Request arrived: {title}",
        f"The request '{title}' for person {person_id} is in the incoming requests of {team}.",
        {"request_id": str(request_id), "person_id": person_id, "team": team},
    )


def request_returned(
    *, request_id: uuid.UUID, step_id: uuid.UUID, person_id: str, note: str
) -> Notice:
    """NT03: the worker who completed the step is told its request was returned, with the note."""
    return Notice(
        Kind.REQUEST_RETURNED,
        "NT03",
        "Your request was returned",
        f"The request on your step for person {person_id} was returned.\nNote: {note}",
        {
            "request_id": str(request_id),
            "step_id": str(step_id),
            "person_id": person_id,
            "note": note,
        },
    )


def emergency_granted(*, user_id: str, position_id: str, unit: str, p30_due: datetime) -> Notice:
    """NT04: an emergency grant tells the user and the TL/SM responsible."""
    return Notice(
        Kind.EMERGENCY_GRANTED,
        "NT04",
        "Emergency access granted: a CSUA P30 is outstanding",
        f"{user_id} was granted emergency absence-related access to {unit} ({position_id}). "
        f"A completed CSUA P30 is still required for the audit, due by {p30_due.isoformat()}.",
        {"user_id": user_id, "position_id": position_id, "unit": unit},
    )


def emergency_scheduled(*, user_id: str, unit: str, grant_at: datetime, answered_by: str) -> Notice:
    """NT04, AC21: the access team lacks capacity now and says when the grant will be made."""
    return Notice(
        Kind.EMERGENCY_SCHEDULED,
        "AC21",
        "Emergency access: time scale given",
        f"The access team ({answered_by}) cannot make {user_id}'s emergency absence-related "
        f"access to {unit} now; it will be granted at {grant_at.isoformat()}. A completed CSUA "
        "P30 is still required afterwards.",
        {"user_id": user_id, "unit": unit, "grant_at": grant_at.isoformat()},
    )


def p30_refused(*, user_id: str, p30_id: uuid.UUID, refused_by: str, reason: str) -> Notice:
    """AC20: the requester is told that the access team refused the P30, and why."""
    return Notice(
        Kind.P30_REFUSED,
        "AC20",
        "CSUA P30 refused",
        f"The CSUA P30 {p30_id} for {user_id} was refused by {refused_by}: {reason}",
        {"user_id": user_id, "p30_id": str(p30_id), "refused_by": refused_by},
    )


def access_changed(
    *, granted: bool, user_id: str, position_id: str, unit: str, kind: str
) -> Notice:
    """NT06: a user is told when secondary access is granted or removed."""
    verb = "granted" if granted else "removed"
    return Notice(
        Kind.ACCESS_GRANTED if granted else Kind.ACCESS_REMOVED,
        "NT06",
        f"Secondary access {verb}",
        f"Your {kind} secondary access to {unit} ({position_id}) was {verb}.",
        {"user_id": user_id, "position_id": position_id, "unit": unit, "access_kind": kind},
    )


def is_secondary(access_kind: str) -> bool:
    return access_kind != "primary"


# DL02: who answers for work owned by a team or segment besides its assignee: the Senior
# Officers of a Wellbeing team, the team leaders of an agency team, the segment's managers.
DEADLINE_LEADER_ROLES = (SENIOR_OFFICER, *sorted(MANAGER_ROLES))


def deadline_source(work_item_id: uuid.UUID, kind: str) -> uuid.UUID:
    """DL02: the identity of an item's due or overdue notice. It derives from the item, not
    from the event, so each is planned once per recipient and channel whatever reaches us
    (NT07)."""
    return uuid.uuid5(work_item_id, f"DL02|{kind}")


def deadline_recipients(assignee: Sequence[str], leaders: Sequence[str]) -> list[str]:
    """DL02: the assignee (if the work is assigned) and their Senior Officer or team leader,
    each once."""
    return list(dict.fromkeys([*assignee, *leaders]))


def deadline_notice(
    *, overdue: bool, work_item_id: uuid.UUID, person_id: str, what: str, due_at: datetime
) -> Notice:
    """DL02: work falls due today, or is overdue."""
    when = due_at.date().isoformat()
    if overdue:
        kind, subject = Kind.WORK_OVERDUE, f"Overdue: {what}"
        body = f"{what} for person {person_id} is overdue: it was due on {when}."
    else:
        kind, subject = Kind.WORK_DUE, f"Due today: {what}"
        body = f"{what} for person {person_id} is due today ({when})."
    return Notice(
        kind,
        "DL02",
        subject,
        body,
        {"work_item_id": str(work_item_id), "person_id": person_id, "due_at": due_at.isoformat()},
    )


def record_involved_worker(
    *,
    work_item_id: uuid.UUID,
    person_id: str,
    worker_user_id: str | None,
    worker_position_id: str,
) -> Notice:
    """SO10, AL11: the Senior Officer who sent the transfer is prompted to record the Generic
    Support Officer as the person's Involved Worker."""
    worker = worker_user_id or worker_position_id
    return Notice(
        Kind.RECORD_INVOLVED_WORKER,
        "SO10",
        "Record the Involved Worker relationship",
        f"{worker} now delivers the support for person {person_id}: record them as the "
        "person's Involved Worker.",
        {
            "work_item_id": str(work_item_id),
            "person_id": person_id,
            "worker_position_id": worker_position_id,
        },
    )


# --- reminders (NT04, NT05) --------------------------------------------------------------------


@dataclass(frozen=True)
class Reminder:
    """A scheduled notice: fires once at `due_at` (the scan is given `now`)."""

    kind: str
    due_at: datetime
    escalate: bool  # escalations also go to the line managers of those responsible


@dataclass(frozen=True)
class ScheduledReminder:
    """A reminder on the schedule, for whom and about which position (NT04, NT05)."""

    reminder_id: uuid.UUID
    series: str
    kind: str
    due_at: datetime
    deadline: datetime
    escalate: bool
    user_id: str
    position_id: str


def p30_series(p30_id: uuid.UUID) -> str:
    """NT04: the reminders of one emergency P30."""
    return f"p30:{p30_id}"


def review_series(grant_id: uuid.UUID) -> str:
    """NT05: the reminders of one absence-related record's review."""
    return f"review:{grant_id}"


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def review_due(granted_or_reviewed_at: datetime) -> datetime:
    """AC09/NT05: absence-related access falls due for review six months after it was granted
    (or last reviewed)."""
    return add_months(granted_or_reviewed_at, REVIEW_MONTHS)


def review_notice_at(due_at: datetime) -> datetime:
    """NT05, DL03: the start of the first day from which the review is at most
    REVIEW_NOTICE_WORKING_DAYS working days away (the access service flags it from then too)."""
    day = due_at.date()
    while (
        working_days.working_days_between(day - timedelta(days=1), due_at.date())
        <= REVIEW_NOTICE_WORKING_DAYS
    ):
        day -= timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=due_at.tzinfo)


def review_reminders(due_at: datetime) -> list[Reminder]:
    """NT05: announced before it falls due, again when due, escalated when overdue."""
    return [
        Reminder(Kind.REVIEW_UPCOMING, review_notice_at(due_at), escalate=False),
        Reminder(Kind.REVIEW_DUE, due_at, escalate=False),
        Reminder(Kind.REVIEW_OVERDUE, due_at + REVIEW_GRACE, escalate=True),
    ]


def p30_first_reminder(granted_at: datetime, p30_due: datetime) -> Reminder:
    """NT04: the first reminder of an outstanding P30."""
    return p30_next_reminder(granted_at, p30_due)


def p30_next_reminder(after: datetime, p30_due: datetime) -> Reminder:
    """NT04: remind every interval until the P30 arrives; once the deadline passes, escalate
    (the escalation is the last reminder of the series)."""
    at = after + P30_REMINDER_INTERVAL
    if at >= p30_due:
        return Reminder(Kind.P30_OVERDUE, p30_due, escalate=True)
    return Reminder(Kind.P30_REMINDER, at, escalate=False)


def reminder_notice(
    reminder_kind: str, *, user_id: str, position_id: str, unit: str, deadline: datetime
) -> Notice:
    """The notice a fired reminder sends (NT04, NT05); `deadline` is when the P30 or the review
    is due."""
    when = deadline.isoformat()
    texts = {
        Kind.P30_REMINDER: (
            "NT04",
            "Reminder: CSUA P30 outstanding",
            f"The CSUA P30 for {user_id}'s emergency access to {unit} ({position_id}) has not "
            f"arrived; it is due by {when}.",
        ),
        Kind.P30_OVERDUE: (
            "NT04",
            "Escalation: CSUA P30 overdue",
            f"The CSUA P30 for {user_id}'s emergency access to {unit} ({position_id}) is overdue "
            f"(due {when}).",
        ),
        Kind.REVIEW_UPCOMING: (
            "NT05",
            "Review of absence-related access coming up",
            f"{user_id}'s absence-related access to {unit} ({position_id}) falls due for its "
            f"six-monthly review on {when}.",
        ),
        Kind.REVIEW_DUE: (
            "NT05",
            "Review of absence-related access due",
            f"{user_id}'s absence-related access to {unit} ({position_id}) is due for its "
            f"six-monthly review now.",
        ),
        Kind.REVIEW_OVERDUE: (
            "NT05",
            "Escalation: review of absence-related access overdue",
            f"The six-monthly review of {user_id}'s absence-related access to {unit} "
            f"({position_id}) is overdue (it fell due on {when}).",
        ),
    }
    rule, subject, body = texts[reminder_kind]
    return Notice(
        reminder_kind, rule, subject, body, {"user_id": user_id, "position_id": position_id}
    )


# --- webhooks (TR06) ---------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}
TARGETS_SETTING = "CASEWORK_WEBHOOK_ALLOWED_TARGETS"
ADDRESSES_SETTING = "CASEWORK_WEBHOOK_ALLOWED_ADDRESSES"


def require_integration_admin(roles: Iterable[str], what: str) -> None:
    """TR06: webhooks are registered, removed and replayed only by an integration
    administrator (an application role of their sign-in)."""
    if AppRole.INTEGRATION_ADMIN.value not in set(roles):
        raise RuleViolation("TR06", f"{what} needs the {AppRole.INTEGRATION_ADMIN.value} role")


def check_webhook_owner(actor_user_id: str | None, webhook_id: str, owner_id: str | None) -> None:
    """TR06: a webhook id belongs to the administrator who first registered it, removed or
    not; nobody else may register it again or remove it. (A registration older than owners,
    with none recorded, is taken by the next administrator who registers it.)"""
    if owner_id is not None and owner_id != actor_user_id:
        raise RuleViolation(
            "TR06", f"webhook {webhook_id!r} belongs to another integration administrator"
        )


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: what the allow-list and the address checks look at."""

    scheme: str
    host: str  # lower case, without brackets or a trailing dot
    port: int
    path: str  # the path, without the query
    query: str
    literal: IPAddress | None  # the host, when it is an IP address

    @property
    def origin(self) -> str:
        """`scheme://host:port`: how reasons name a target (never its path or query)."""
        return f"{self.scheme}://{_netloc(self.host, self.port)}"

    @property
    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return _bracketed(self.host) if default else _netloc(self.host, self.port)

    def url_at(self, address: IPAddress) -> str:
        """The URL with the host replaced by `address`: the request goes to the address that
        was checked (a second DNS answer cannot change it)."""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{_netloc(str(address), self.port)}{self.path or '/'}{query}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _netloc(host: str, port: int) -> str:
    return f"{_bracketed(host)}:{port}"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_target(url: str) -> Target:
    """TR06: a webhook target is an http(s) URL with a host, no credentials and no dot
    segments (a receiver could normalise them out of an allowed path)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise RuleViolation("TR06", "the webhook URL contains whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RuleViolation("TR06", f"the webhook URL does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RuleViolation("TR06", f"webhook targets are http or https, not {scheme!r}")
    if "@" in parts.netloc:
        raise RuleViolation(
            "TR06",
            "credentials in the webhook URL are refused: receivers verify the signature instead",
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise RuleViolation("TR06", "the webhook URL has no host")
    segments = urllib.parse.unquote(parts.path).split("/")
    if "." in segments or ".." in segments:
        raise RuleViolation("TR06", "the webhook URL's path has '.' or '..' segments")
    return Target(
        scheme=scheme,
        host=host,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        path=parts.path,
        query=parts.query,
        literal=_literal(host),
    )


@dataclass(frozen=True)
class TargetRule:
    """One entry of the allow-list. A URL prefix (`https://hooks.example.org/casework/`)
    allows its scheme, host and port and the paths at or below its path; a host pattern
    (`hooks.example.org`, `*.example.org`, either with `:port`) allows https to that host (any
    subdomain for `*.`), on port 443 unless it names one."""

    scheme: str
    host: str  # `*.example.org` for a wildcard
    port: int
    path: str  # "" or "/": any path

    @classmethod
    def parse(cls, entry: str) -> TargetRule:
        text = entry.strip()
        is_prefix = "://" in text
        try:
            parts = urllib.parse.urlsplit(text if is_prefix else f"https://{text}")
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{TARGETS_SETTING}: {entry!r} does not parse: {exc}") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".").lower()
        if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
            raise ValueError(f"{TARGETS_SETTING}: {entry!r} is not an http(s) host or URL prefix")
        if parts.query or parts.fragment or (not is_prefix and parts.path):
            raise ValueError(f"{TARGETS_SETTING}: {entry!r} names a query, fragment or path")
        if "*" in host and not (host.startswith("*.") and "*" not in host[2:] and host[2:]):
            raise ValueError(f"{TARGETS_SETTING}: {entry!r}: a wildcard is only `*.domain`")
        return cls(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], parts.path)

    def allows(self, target: Target) -> bool:
        if (target.scheme, target.port) != (self.scheme, self.port):
            return False
        if self.host.startswith("*."):
            if not target.host.endswith(self.host[1:]) or target.literal is not None:
                return False
        elif target.host != self.host:
            return False
        base = self.path.rstrip("/")
        return not base or target.path == base or target.path.startswith(f"{base}/")


@dataclass(frozen=True)
class WebhookPolicy:
    """TR06: the targets webhooks may have (`rules`, from configuration; none by default) and
    the non-public addresses they may still reach (`networks`, explicitly allowed CIDRs)."""

    rules: tuple[TargetRule, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, targets: Iterable[str], addresses: Iterable[str]) -> WebhookPolicy:
        """From the settings; a malformed entry is a configuration error (ValueError)."""
        networks = []
        for cidr in addresses:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"{ADDRESSES_SETTING}: {cidr!r}: {exc}") from None
        return cls(tuple(TargetRule.parse(t) for t in targets), tuple(networks))

    def check_url(self, url: str) -> Target:
        """TR06: the target a webhook may be registered for (and sent to): an http(s) URL
        without credentials, allowed by configuration; an IP address in it must be one the
        address check lets through."""
        target = parse_target(url)
        if target.literal is not None:
            self.check_address(target, target.literal)
        if not any(rule.allows(target) for rule in self.rules):
            raise RuleViolation(
                "TR06",
                f"webhook target {target.origin} is not allowed by configuration "
                f"({TARGETS_SETTING})",
            )
        return target

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why a webhook may not connect to `address` (None: it may). Loopback, private,
        link-local, multicast, reserved, unspecified and other non-global addresses are
        refused unless inside an allowed network; an IPv4-mapped IPv6 address counts as the
        IPv4 address it maps."""
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if any(a in net for net in self.networks for a in (address, mapped) if a is not None):
            return None
        checked = mapped or address
        named = f"{address} (IPv4 {mapped})" if mapped else str(address)
        for kind, flag in (
            ("an unspecified", checked.is_unspecified),
            ("a loopback", checked.is_loopback),
            ("a link-local", checked.is_link_local),
            ("a multicast", checked.is_multicast),
            ("a private", checked.is_private),
            ("a reserved", checked.is_reserved),
            ("a non-global", not checked.is_global),
        ):
            if flag:
                return f"{named} is {kind} address"
        return None

    def check_address(self, target: Target, address: IPAddress) -> None:
        refusal = self.address_refusal(address)
        if refusal is not None:
            raise RuleViolation(
                "TR06",
                f"webhook target {target.origin} refused: {refusal} (not in {ADDRESSES_SETTING})",
            )
