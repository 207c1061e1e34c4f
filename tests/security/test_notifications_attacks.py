"""Attacks on the notifications service (TR04, TR05, TR06, TR07, TR08) over the real broker,
database, edge, identity provider and webhook receiver: each is refused naming the rule and
shown to have had no effect, read back through the API as someone allowed to read it (the
user themself, an operator, an integration administrator)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts import Actor, Command, CommandRejected, Envelope, Topics
from contracts.access import Role
from contracts.allocation import Owner, StepType, WorkItemAssignedV2, WorkItemSnapshot, WorkState
from contracts.notifications import (
    NotificationFailed,
    NotificationParked,
    ParkedDeliveriesReplayed,
    RegisterWebhook,
    RemoveWebhook,
    ReplayParkedDeliveries,
    WebhookRegistered,
)
from contracts.signoff import RequestReturned
from deploy.identity import SignedInUsers
from tests.conftest import RunningService
from tests.notifications import conftest as nt
from tests.notifications.conftest import (
    ADMIN,
    OPERATOR,
    Hook,
    Notifier,
    Org,
    Person,
    WebhookReceiver,
    deliveries,
    inbox_of,
    outcomes,
    publish,
    register_webhook,
    remove_webhook,
    sent_events,
    uid,
)
from tests.support.client import CommandClient, EventLog

# The notifications fixtures, shared with tests/notifications (one service per session).
smtp = nt.smtp
webhook = nt.webhook
notifier = nt.notifier
notifications = nt.notifications
org = nt.org

SECOND_ADMIN = "integration-admin-2"
KIND = "request_returned"


# --- helpers ---------------------------------------------------------------------------------


def _returned(worker: Person, note: str = "n") -> RequestReturned:
    return RequestReturned(
        request_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        person_id=uid("P"),
        note=note,
        return_to_position_id=worker.position_id,
    )


async def _told(commands: CommandClient, event_log: EventLog, worker: Person, note: str) -> Any:
    """A notice for `worker`, once it is in their inbox (and its webhook rows are planned)."""
    source = await publish(commands, Topics.SIGNOFF_EVENTS, _returned(worker, note))
    await event_log.wait_for(
        lambda: any(s.channel == "inbox" for s in sent_events(event_log, source.message_id))
    )
    return source


async def _worker(org: Org, label: str = "ta") -> Person:
    await org.define()
    person = await org.person(label, Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    return person


async def _rejected(
    commands: CommandClient, event_log: EventLog, command: Command, actor: Actor
) -> CommandRejected:
    sent = await commands.send(command, actor)
    (answer,) = await event_log.outcome(sent.message_id)
    assert answer.type == CommandRejected.TYPE, answer.payload
    return CommandRejected.model_validate(answer.payload)


async def _webhooks(service: RunningService) -> dict[str, dict[str, Any]]:
    """The registrations, read as an integration administrator."""
    response = await service.get(ADMIN.user_id, "/webhooks")
    assert response.status_code == 200, response.text
    return {w["webhook_id"]: w for w in response.json()["webhooks"]}


async def _second_admin(users: SignedInUsers) -> Actor:
    """Another integration administrator, made one on the identity provider."""
    await users.signin.set_claims(SECOND_ADMIN, {"roles": ["integration-admin"]})
    users.forget(SECOND_ADMIN)
    return Actor(user_id=SECOND_ADMIN)


def _dead_letters(event_log: EventLog, topic: str, message_id: uuid.UUID) -> list[Any]:
    return [
        r
        for r in event_log.records
        if r.topic == Topics.dead_letter(topic) and str(message_id).encode() in (r.value or b"")
    ]


def _header(record: Any, name: str) -> str:
    return next(bytes(v).decode() for k, v in record.headers or () if k == name)


def _assigned_to(worker: Person) -> WorkItemAssignedV2:
    item = WorkItemSnapshot(
        work_item_id=uuid.uuid4(),
        person_id=uid("P"),
        step_type=StepType.TRUSTED_ASSESSMENT,
        state=WorkState.INCOMING,
        owner_kind="worker",
        owner_id=worker.position_id,
        owner_user_id=worker.user_id,
        priority="normal",
    )
    return WorkItemAssignedV2(
        person_id=item.person_id,
        items=[item],
        from_owners=[Owner(kind="team", id="t")],
        note="x",
    )


# --- TR05: the read API ----------------------------------------------------------------------


async def test_tr05_a_user_cannot_read_another_users_inbox(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    users: SignedInUsers,
) -> None:
    victim = await _worker(org, "victim")
    attacker = await org.person("attacker", Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    await _told(commands, event_log, victim, "for the victim only")

    # The old path naming a user is gone; naming one in the query changes nothing.
    old = await notifications.get(attacker.user_id, f"/users/{victim.user_id}/inbox")
    assert old.status_code == 404
    signed = await users.headers(attacker.user_id)
    naming = {"user_id": victim.user_id, "recipient_id": victim.user_id}
    mine = await notifications.http.get("/me/inbox", headers=signed, params=naming)
    assert mine.status_code == 200
    assert mine.json() == {"user_id": attacker.user_id, "items": []}
    count = await notifications.http.get("/me/inbox/unread-count", headers=signed, params=naming)
    assert count.json() == {"user_id": attacker.user_id, "unread": 0}
    # No token, or a forged one: refused, saying why.
    for headers in ({}, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ2In0."}):
        refused = await notifications.http.get("/me/inbox", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["rule"] == "TR05" and refused.json()["error"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    # The victim still reads their own notice.
    (notice,) = await inbox_of(notifications, victim.user_id)
    assert "for the victim only" in notice["body"]


async def test_tr05_a_user_cannot_mark_another_users_notices_read(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    victim = await _worker(org, "victim")
    attacker = await org.person("attacker", Role.TRUSTED_ASSESSOR, email=False)
    await org.known()
    await _told(commands, event_log, victim, "unread, please")
    (notice,) = await inbox_of(notifications, victim.user_id)

    by_id = await notifications.post(
        attacker.user_id, "/me/inbox/read", {"notification_ids": [notice["notification_id"]]}
    )
    assert by_id.status_code == 200 and by_id.json()["marked"] == 0
    everything = await notifications.post(attacker.user_id, "/me/inbox/read", {})
    assert everything.json() == {"user_id": attacker.user_id, "marked": 0}
    count = await notifications.get(victim.user_id, "/me/inbox/unread-count")
    assert count.json()["unread"] == 1
    assert (await inbox_of(notifications, victim.user_id))[0]["read_at"] is None


async def test_tr05_mark_read_with_an_empty_text_plain_body_is_refused_and_marks_nothing(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    users: SignedInUsers,
) -> None:
    """What a cross-site form can send: text/plain or form-encoded, no Authorization header."""
    victim = await _worker(org, "victim")
    await _told(commands, event_log, victim, "unread, please")
    signed = await users.headers(victim.user_id)
    for content_type, body in (
        ("text/plain", b""),
        ("text/plain", b'{"notification_ids": []}'),
        ("application/x-www-form-urlencoded", b"notification_ids="),
    ):
        refused = await notifications.http.post(
            "/me/inbox/read", content=body, headers={**signed, "Content-Type": content_type}
        )
        assert refused.status_code == 415, refused.text
        assert refused.json()["rule"] == "TR05" and "JSON" in refused.json()["error"]
    cross_site = await notifications.http.post(
        "/me/inbox/read", content=b"", headers={"Content-Type": "text/plain"}
    )
    assert cross_site.status_code == 401
    count = await notifications.get(victim.user_id, "/me/inbox/unread-count")
    assert count.json()["unread"] == 1


async def test_tr05_deliveries_and_reminders_need_the_operator_role(
    org: Org, commands: CommandClient, event_log: EventLog, notifications: RunningService
) -> None:
    await org.define()
    worker = await org.person("ta", Role.TRUSTED_ASSESSOR)  # with an e-mail address
    await org.known()
    await _told(commands, event_log, worker, "private body")
    for user in (worker.user_id, ADMIN.user_id):  # a user, an integration admin: not operators
        for path in ("/deliveries", "/reminders"):
            refused = await notifications.get(user, path, recipient_id=worker.user_id)
            assert refused.status_code == 403, (user, path)
            assert refused.json() == {"error": "this needs the operator role", "rule": "TR05"}
    assert (await notifications.http.get("/deliveries")).status_code == 401
    # An operator reads them: the address and the body the others were refused.
    rows = await deliveries(notifications, recipient_id=worker.user_id)
    assert {(r["channel"], r["target"]) for r in rows} == {
        ("inbox", None),
        ("email", worker.email),
    }
    assert all("private body" in r["body"] for r in rows)
    assert (await notifications.get(OPERATOR, "/reminders")).status_code == 200


# --- TR06: who may register, remove and replay -------------------------------------------


async def test_tr06_registering_a_webhook_for_everything_as_a_non_admin_is_refused(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
) -> None:
    worker = await _worker(org)
    for actor in (Actor(user_id=worker.user_id), Actor(user_id=OPERATOR)):
        hook_id = uid("hook")
        refusal = await _rejected(
            commands,
            event_log,
            RegisterWebhook(
                webhook_id=hook_id,
                url=webhook.url(hook_id),
                secret=uuid.uuid4().hex,
                event_types=["*"],
            ),
            actor,
        )
        assert refusal.rule == "TR06" and "integration-admin" in refusal.reason
        assert hook_id not in await _webhooks(notifications)
        await _told(commands, event_log, worker, "nobody else hears of this")
        assert await deliveries(notifications, recipient_id=hook_id) == []
        assert hook_id not in webhook.arrivals


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("http://localhost:5432/", "http://localhost:5432 is not allowed by configuration"),
    ],
    ids=["metadata-service", "private-network", "local-database"],
)
async def test_tr06_internal_targets_are_refused_at_registration(
    url: str,
    why: str,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
) -> None:
    hook_id = uid("hook")
    command = RegisterWebhook(
        webhook_id=hook_id, url=url, secret=uuid.uuid4().hex, event_types=["*"]
    )
    refusal = await _rejected(commands, event_log, command, ADMIN)
    assert refusal.rule == "TR06" and why in refusal.reason
    assert hook_id not in await _webhooks(notifications)


async def test_tr06_credentials_in_the_url_or_another_scheme_are_refused(
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> None:
    hook_id = uid("hook")
    with_password = webhook.url(hook_id).replace("http://", "http://svc:hunter2@")
    command = RegisterWebhook(
        webhook_id=hook_id, url=with_password, secret=uuid.uuid4().hex, event_types=["*"]
    )
    refusal = await _rejected(commands, event_log, command, ADMIN)
    assert refusal.rule == "TR06" and "credentials" in refusal.reason
    assert "hunter2" not in refusal.reason
    # Another scheme does not even make a command: the edge refuses it (the contract).
    headers = await users.headers(ADMIN.user_id)
    for url in ("ftp://127.0.0.1/hook", "file:///etc/passwd", "gopher://127.0.0.1:6379/_"):
        body = {**command.model_dump(mode="json"), "url": url}
        answer = await commands.edge.post(
            f"/commands/{RegisterWebhook.TYPE}", json=body, headers=headers
        )
        assert answer.status_code == 400
        assert [p["field"] for p in answer.json()["problems"]] == ["url"]
    assert hook_id not in await _webhooks(notifications)


async def test_tr06_an_allow_listed_name_resolving_to_loopback_is_refused_before_any_request(
    commands: CommandClient,
    event_log: EventLog,
    webhook: WebhookReceiver,
    notifier: Notifier,
) -> None:
    """DNS is not trusted: `localhost` is on the allow-list, but the loopback address it
    resolves to is not explicitly allowed, so the delivery is parked at once, unsent."""
    origin = f"http://localhost:{webhook.port}"
    service = await notifier.restart(
        webhook_allowed_targets=[f"{webhook.origin}/", f"{origin}/"],
        webhook_allowed_addresses=[],
    )
    try:
        worker = await _worker(Org(commands, service))
        name = uid("inward")
        hook = await register_webhook(
            commands, event_log, webhook, [KIND], url=f"{origin}/hook/{name}"
        )
        source = await _told(commands, event_log, worker, "to a name that resolves inward")
        (parked,) = await event_log.wait_for(
            lambda: outcomes(event_log, source.message_id, NotificationParked)
        )
        assert parked.recipient_id == hook.webhook_id and parked.channel == "webhook"
        assert parked.reason.startswith("TR06:") and "loopback address" in parked.reason
        assert outcomes(event_log, source.message_id, NotificationFailed) == []  # not retried
        assert name not in webhook.arrivals  # no request was made
        (row,) = await deliveries(service, recipient_id=hook.webhook_id)
        assert (row["status"], row["attempts"], row["last_error"]) == (
            "parked",
            1,
            parked.reason,
        )
        await remove_webhook(commands, event_log, hook)
    finally:
        await notifier.restart()


async def test_tr06_redirects_are_not_followed(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    webhook: WebhookReceiver,
) -> None:
    """An allowed receiver answering 307 towards somewhere else does not move the POST."""
    worker = await _worker(org)
    name = uid("hook")
    hook = await register_webhook(
        commands, event_log, webhook, [KIND], url=f"{webhook.origin}/redirect/{name}"
    )
    source = await _told(commands, event_log, worker, "stay where you were sent")
    (failed, *_) = await event_log.wait_for(
        lambda: outcomes(event_log, source.message_id, NotificationFailed)
    )
    assert "307" in failed.reason and "redirects are not followed" in failed.reason
    assert f"redirect:{name}" in webhook.arrivals and name not in webhook.arrivals
    await remove_webhook(commands, event_log, hook)


async def test_tr06_another_admin_cannot_take_over_a_webhook_id(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> None:
    other = await _second_admin(users)
    worker = await _worker(org)
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    takeover = RegisterWebhook(
        webhook_id=hook.webhook_id,
        url=webhook.url("stolen"),
        secret=uuid.uuid4().hex,
        event_types=["*"],
    )
    refusal = await _rejected(commands, event_log, takeover, other)
    assert refusal.rule == "TR06" and "belongs to another integration administrator" in (
        refusal.reason
    )
    registered = (await _webhooks(notifications))[hook.webhook_id]
    assert registered["url"] == webhook.url(hook.webhook_id)
    assert registered["owner_id"] == ADMIN.user_id and registered["event_types"] == [KIND]
    # Notices still go to the owner's receiver, signed with the owner's secret.
    source = await _told(commands, event_log, worker, "still the owner's")
    await event_log.wait_for(
        lambda: any(s.channel == "webhook" for s in sent_events(event_log, source.message_id))
    )
    assert len(webhook.bodies(hook.webhook_id)) == 1 and "stolen" not in webhook.arrivals
    # A removed webhook's id stays its owner's.
    await remove_webhook(commands, event_log, hook)
    refusal = await _rejected(commands, event_log, takeover, other)
    assert refusal.rule == "TR06" and "belongs to another" in refusal.reason
    assert (await _webhooks(notifications))[hook.webhook_id]["url"] == webhook.url(hook.webhook_id)


async def test_tr06_nobody_but_the_owner_removes_a_webhook(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> None:
    other = await _second_admin(users)
    worker = await _worker(org)
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    remove = RemoveWebhook(webhook_id=hook.webhook_id)
    refusal = await _rejected(commands, event_log, remove, other)
    assert refusal.rule == "TR06" and "belongs to another" in refusal.reason
    refusal = await _rejected(commands, event_log, remove, Actor(user_id=worker.user_id))
    assert refusal.rule == "TR06" and "integration-admin" in refusal.reason
    assert (await _webhooks(notifications))[hook.webhook_id]["removed_at"] is None
    source = await _told(commands, event_log, worker, "still registered")
    await event_log.wait_for(
        lambda: any(s.channel == "webhook" for s in sent_events(event_log, source.message_id))
    )
    assert len(webhook.keys(hook.webhook_id)) == 1
    await remove_webhook(commands, event_log, hook)


async def test_tr06_only_an_integration_admin_replays_parked_deliveries(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
) -> None:
    worker = await _worker(org)
    hook = await register_webhook(commands, event_log, webhook, [KIND])
    webhook.down.add(hook.webhook_id)
    source = await _told(commands, event_log, worker, "parked")
    (parked,) = await event_log.wait_for(
        lambda: outcomes(event_log, source.message_id, NotificationParked)
    )
    webhook.down.discard(hook.webhook_id)
    arrived = len(webhook.arrivals)
    for actor in (Actor(user_id=OPERATOR), Actor(user_id=worker.user_id)):
        for ids in ([parked.notification_id], []):
            replay = ReplayParkedDeliveries(delivery_ids=ids)
            refusal = await _rejected(commands, event_log, replay, actor)
            assert refusal.rule == "TR06" and "integration-admin" in refusal.reason
    (row,) = await deliveries(notifications, recipient_id=hook.webhook_id)
    assert (row["status"], row["attempts"]) == ("parked", 8)
    assert len(webhook.arrivals) == arrived
    # The integration administrator may.
    allowed = ReplayParkedDeliveries(delivery_ids=[parked.notification_id])
    (answer,) = await event_log.outcome((await commands.send(allowed, ADMIN)).message_id)
    assert ParkedDeliveriesReplayed.model_validate(answer.payload).delivery_ids == [
        parked.notification_id
    ]
    await event_log.wait_for(lambda: webhook.keys(hook.webhook_id))
    await remove_webhook(commands, event_log, hook)


# --- TR04: events only from their owner's event topic --------------------------------------


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        (Topics.NOTIFICATIONS_COMMANDS, "is not a command; notifications.commands carries"),
        (Topics.SIGNOFF_EVENTS, "is accepted only from allocation.events, not signoff.events"),
    ],
    ids=["on-a-command-topic", "on-another-services-event-topic"],
)
async def test_tr04_a_forged_work_assigned_event_tells_no_one(
    topic: str,
    why: str,
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
) -> None:
    """A token-less `allocation.work_item_assigned` published where it does not belong is
    dead-lettered by the plumbing; nobody is told of the work."""
    worker = await _worker(org)
    forged = _assigned_to(worker)
    envelope = Envelope.wrap(forged)
    await commands.send_raw(topic, envelope.model_dump_json().encode(), key=forged.key())
    dead, *_ = await event_log.wait_for(
        lambda: _dead_letters(event_log, topic, envelope.message_id)
    )
    reason = _header(dead, "dlq-reason")
    assert reason.startswith("TR04:") and why in reason
    assert sent_events(event_log, envelope.message_id) == []
    assert await inbox_of(notifications, worker.user_id) == []
    assert await deliveries(notifications, recipient_id=worker.user_id) == []
    # The same event from its owner's topic is work landing: the worker is told.
    real = await publish(commands, Topics.ALLOCATION_EVENTS, _assigned_to(worker))
    await event_log.wait_for(lambda: sent_events(event_log, real.message_id))
    assert len(await inbox_of(notifications, worker.user_id)) == 1


# --- TR07, TR08: the secret --------------------------------------------------------------


async def test_tr07_a_webhook_secret_appears_in_no_event_on_any_topic(
    org: Org,
    commands: CommandClient,
    event_log: EventLog,
    notifications: RunningService,
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> None:
    worker = await _worker(org)
    hook: Hook = await register_webhook(commands, event_log, webhook, [KIND])
    secrets = [hook.secret]
    attempts: list[tuple[RegisterWebhook, Actor]] = []
    for actor, hook_id, url in (
        (Actor(user_id=worker.user_id), uid("hook"), webhook.url("x")),  # not an admin
        (await _second_admin(users), hook.webhook_id, webhook.url("x")),  # a takeover
        (ADMIN, uid("hook"), "http://169.254.169.254/"),  # a refused target
    ):
        secret = f"secret-{uuid.uuid4().hex}"
        secrets.append(secret)
        command = RegisterWebhook(webhook_id=hook_id, url=url, secret=secret, event_types=["*"])
        attempts.append((command, actor))
    for command, actor in attempts:
        assert (await _rejected(commands, event_log, command, actor)).rule == "TR06"
    source = await _told(commands, event_log, worker, "signed, not revealed")
    await event_log.wait_for(
        lambda: any(s.channel == "webhook" for s in sent_events(event_log, source.message_id))
    )
    await remove_webhook(commands, event_log, hook)
    registered = [e for e in event_log.envelopes() if e.type == WebhookRegistered.TYPE]
    assert any(e.payload["webhook_id"] == hook.webhook_id for e in registered)
    for record in list(event_log.records):  # every event topic and dead-letter topic
        seen = (record.value or b"") + b"".join(bytes(v) for _, v in record.headers or ())
        for secret in secrets:
            assert secret.encode() not in seen, record.topic
    # Nor in what the read API shows the people allowed to read it.
    listed = await notifications.get(ADMIN.user_id, "/webhooks")
    rows = await notifications.get(OPERATOR, "/deliveries", recipient_id=hook.webhook_id)
    for secret in secrets:
        assert secret not in listed.text and secret not in rows.text
    ((headers, _),) = webhook.bodies(hook.webhook_id)
    assert all(hook.secret not in value for value in headers.values())


async def test_tr08_an_oversized_secret_url_or_id_is_refused_at_the_edge(
    commands: CommandClient,
    notifications: RunningService,
    webhook: WebhookReceiver,
    users: SignedInUsers,
) -> None:
    hook_id = uid("hook")
    good = RegisterWebhook(
        webhook_id=hook_id, url=webhook.url(hook_id), secret="s" * 16, event_types=[KIND]
    ).model_dump(mode="json")
    headers = await users.headers(ADMIN.user_id)
    for field, value in (
        ("secret", "s" * 257),
        ("url", webhook.url(hook_id) + "x" * 2048),
        ("webhook_id", "h" * 129),
        ("webhook_id", "position:pos-1"),  # nor one that reads as a waiting recipient
        ("event_types", ["k"] * 33),
    ):
        answer = await commands.edge.post(
            f"/commands/{RegisterWebhook.TYPE}", json={**good, field: value}, headers=headers
        )
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["rule"] == "schema"
        assert {p["field"].split(".")[0] for p in answer.json()["problems"]} == {field}
    assert hook_id not in await _webhooks(notifications)


async def test_tr05_the_webhook_list_is_for_integration_admins(
    org: Org, notifications: RunningService
) -> None:
    worker = await _worker(org)
    for user in (worker.user_id, OPERATOR):
        refused = await notifications.get(user, "/webhooks")
        assert refused.status_code == 403
        assert refused.json() == {"error": "this needs the integration-admin role", "rule": "TR06"}
    assert (await notifications.http.get("/webhooks")).status_code == 401
