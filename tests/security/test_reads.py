"""Attacks on the read APIs of allocation, sign-off and access (TR05 with AL10, AC18, AC19, SO03)
over a real broker, database, edge and OpenID Connect provider: each attack is refused with its
status and the reason naming the rule, and shown to have leaked nothing (none of the attacked
data is in the answer).

The module runs the three services on a broker and a database of its own, with the walkthrough
directory loaded by the directory administrator, so that it knows every work item there is and
can assert exact sets (a search by name returns exactly the permitted items)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.routing import Route

from contracts import Actor, Command, CommandRejected, Envelope
from contracts.access import DirectoryLoaded, LoadDirectory
from contracts.allocation import (
    AssignWork,
    CreateStep,
    ReceiveReferral,
    ReceiveServiceRequest,
    RecordWorkerRelationship,
    StepType,
    WorkItemCreated,
)
from contracts.signoff import MANAGEMENT_TEAM
from deploy.identity import SignedInUsers
from deploy.stack import DevIdentityProvider
from services.access import api as access_api
from services.access.service import SPEC as ACCESS
from services.allocation import api as allocation_api
from services.allocation import domain as allocation_domain
from services.allocation import store as allocation_store
from services.allocation.service import SPEC as ALLOCATION
from services.shared.auth import SigningKey
from services.shared.settings import Settings
from services.signoff import api as signoff_api
from services.signoff import store as signoff_store
from services.signoff.service import SPEC as SIGNOFF
from tests.allocation.helpers import WALKTHROUGH_DIRECTORY, eventually
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog, clients_on
from tests.support.infra import Infra, isolated_infrastructure

HUB, NORTH = allocation_domain.HUB_TEAM, allocation_domain.NORTH_TEAM
NORTH_INBOX = allocation_domain.CASE_MONITORING_INBOXES[allocation_domain.Area.NORTH]
APPEALS_TEAM, APPEALS_HOPPER = "team-appeals-1", "hopper-team-appeals-1"
ADMIN = Actor(user_id="directory-admin")


def seat(user: str) -> Actor:
    return Actor(user_id=user, position_id=f"pos-{user}")


SO_HUB, SO_NORTH, SO_SOUTH, SO_MGMT = (
    seat(u) for u in ("so-hub", "so-north", "so-south", "so-mgmt")
)
HUB_1, HUB_2 = seat("hub-1"), seat("hub-2")
TA_NORTH, TA_SOUTH = seat("ta-north-1"), seat("ta-south-1")
TL_APPEALS, TL_ENF_1 = seat("tl-appeals-1"), seat("tl-enf-1")
CW_ENF_1, CW_ENF_2 = seat("cw-enf-1"), seat("cw-enf-2")


@dataclass
class World:
    """The three services and what the module put in them: who holds which work."""

    commands: CommandClient
    log: EventLog
    allocation: RunningService
    signoff: RunningService
    access: RunningService
    items: dict[str, str] = field(default_factory=dict)  # label -> work item id
    persons: dict[str, str] = field(default_factory=dict)  # label -> person id

    async def ok(self, command: Command, actor: Actor) -> list[Envelope]:
        sent = await self.commands.send(command, actor)
        events = await self.log.outcome(sent.message_id)
        assert CommandRejected.TYPE not in {e.type for e in events}, [e.payload for e in events]
        return events

    async def created(self, label: str, command: Command, actor: Actor) -> str:
        (event,) = [e for e in await self.ok(command, actor) if e.type == WorkItemCreated.TYPE]
        item = WorkItemCreated.model_validate(event.payload)
        self.items[label] = str(item.work_item_id)
        self.persons.setdefault(label, item.person_id)
        return self.items[label]

    async def referral(self, label: str, name: str) -> str:
        person = f"P-{uuid.uuid4().hex[:10]}"
        self.persons[label] = person
        command = ReceiveReferral(person_id=person, person_name=name, area="North")
        return await self.created(label, command, SO_HUB)

    async def assign(self, label: str, to: Actor, actor: Actor) -> None:
        command = AssignWork(
            person_id=self.persons[label],
            work_item_id=uuid.UUID(self.items[label]),
            to_position_id=to.position_id or "",
        )
        await self.ok(command, actor)

    async def load(self) -> None:
        load = LoadDirectory.model_validate_json(WALKTHROUGH_DIRECTORY.read_text())
        sent = await self.commands.send(load, ADMIN)
        events = await self.log.outcome(sent.message_id)
        assert DirectoryLoaded.TYPE in {e.type for e in events}, [e.payload for e in events]
        wanted = {p.position_id for p in load.positions}

        async def projected() -> bool:
            return await _projected(
                self.allocation, allocation_store.directory_t.positions, wanted
            ) and await _projected(self.signoff, signoff_store.directory_t.positions, wanted)

        await eventually(projected)

        # The Hub Team's triage, one item each for two Hub workers.
        await self.referral("anna", "Anna Attack")
        await self.assign("anna", HUB_1, SO_HUB)
        await self.referral("alan", "Alan Attack")
        await self.assign("alan", HUB_2, SO_HUB)
        # A person with triage in the Hub Team and a Trusted Assessment with the North assessor.
        await self.referral("amos", "Amos Attack")
        self.persons["amos-ta"] = self.persons["amos"]
        step = CreateStep(person_id=self.persons["amos"], step_type=StepType.TRUSTED_ASSESSMENT)
        await self.created("amos-ta", step, SO_HUB)
        involved = RecordWorkerRelationship(
            person_id=self.persons["amos"], worker_position_id=TA_NORTH.position_id or ""
        )
        await self.ok(involved, SO_NORTH)
        await self.assign("amos-ta", TA_NORTH, SO_NORTH)
        # The benefits agency: a service request in the Appeals team's hopper.
        self.persons["abigail"] = f"P-{uuid.uuid4().hex[:10]}"
        intake = ReceiveServiceRequest(
            person_id=self.persons["abigail"], person_name="Abigail Attack", unit_id=APPEALS_TEAM
        )
        await self.created("abigail", intake, TL_APPEALS)
        # The same person known to the agency too: a service request of theirs in Appeals.
        self.persons["anna-appeals"] = self.persons["anna"]
        also = intake.model_copy(
            update={"person_id": self.persons["anna"], "person_name": "Anna Attack"}
        )
        await self.created("anna-appeals", also, TL_APPEALS)

        # Sign-off has the assessment step, held by the North assessor.
        async def tracked() -> bool:
            found = await self.signoff.get(SO_MGMT.user_id, f"/steps/{self.items['amos-ta']}")
            return found.status_code == 200 and found.json()["owner_id"] == TA_NORTH.position_id

        await eventually(tracked)


async def _projected(service: RunningService, positions: sa.Table, wanted: set[str]) -> bool:
    async with service.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(positions.c.position_id).where(positions.c.position_id.in_(wanted))
        )
        return set(rows.scalars()) == wanted


@pytest.fixture(scope="module")
def own_infra(infra: Infra) -> Iterator[tuple[str, str]]:
    with isolated_infrastructure(infra, "security_reads") as found:
        yield found


@pytest.fixture(scope="module")
async def world(
    own_infra: tuple[str, str],
    settings_for: Callable[..., Settings],
    edge_key: SigningKey,
    users: SignedInUsers,
) -> AsyncIterator[World]:
    bootstrap, database_url = own_infra
    edge = settings_for(
        "edge", kafka_bootstrap_servers=bootstrap, assertion_signing_key=edge_key.dumps()
    )
    async with clients_on(bootstrap, edge, users) as (commands, log):
        started: dict[str, RunningService] = {}
        try:
            for spec in (ALLOCATION, SIGNOFF, ACCESS):
                settings = settings_for(
                    spec.name, kafka_bootstrap_servers=bootstrap, database_url=database_url
                )
                started[spec.name] = await start_service(spec, settings, users)
            found = World(
                commands, log, started["allocation"], started["signoff"], started["access"]
            )
            await found.load()
            yield found
        finally:
            for service in started.values():
                await service.http.aclose()
                await service.runtime.stop()


def refused(response: httpx.Response, status: int, rule: str, *leaks: str) -> str:
    """The refusal's status and rule; none of `leaks` (names, ids of what was asked for) is in
    the answer. Returns the reason."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["rule"] == rule, body
    assert set(body) == {"error", "rule"}, body  # the refusal, nothing else
    for leak in leaks:
        assert leak not in response.text
    return str(body["error"])


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["work_item_id"] for i in items}


# --- No token, forged tokens -------------------------------------------------------------------


async def test_tr05_work_search_without_token_is_401(world: World) -> None:
    response = await world.allocation.http.get("/work-items", params={"person_name": "a"})
    reason = refused(response, 401, "TR05", "Attack", world.items["anna"])
    assert "no sign-in token" in reason
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def _sample_path(path: str) -> str:
    """A route's path with its parameters filled in (an id that exists where one is needed)."""
    return (
        path.replace("{work_item_id}", str(uuid.uuid4()))
        .replace("{step_id}", str(uuid.uuid4()))
        .replace("{team}", HUB)
        .replace("{kind}", "team")
        .replace("{owner_id}", HUB)
        .replace("{position_id}", "pos-hub-1")
        .replace("{person_id}", "P-1")
        .replace("{user_id}", "cw-enf-1")
    )


async def test_tr05_every_read_route_of_the_three_services_without_token_is_401(
    world: World,
) -> None:
    """Every route of the three read APIs, GET or POST: no token, no answer (so no route was
    left without the guard)."""
    checked = 0
    for service, routes in (
        (world.allocation, allocation_api.routes),
        (world.signoff, signoff_api.routes),
        (world.access, access_api.routes),
    ):
        for route in routes:
            assert isinstance(route, Route)
            path = _sample_path(route.path)
            method = "POST" if "POST" in (route.methods or set()) else "GET"
            response = await service.http.request(
                method, path, json={} if method == "POST" else None
            )
            refused(response, 401, "TR05", "Attack")
            checked += 1
    assert checked >= 20


def _forged(identity: DevIdentityProvider, *, kid: str | None, expired: bool = False) -> str:
    """A well-formed sign-in token for the Management Team's Senior Officer, for the right
    issuer and audience, signed with a key of the attacker's own."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": identity.issuer,
        "aud": "casework",
        "sub": SO_MGMT.user_id,
        "iat": now - 7200 if expired else now,
        "exp": now - 3600 if expired else now + 3600,
        "roles": ["directory-admin"],
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


async def test_tr05_forged_token_signed_with_a_key_not_in_the_jwks_is_401(
    world: World, identity: DevIdentityProvider
) -> None:
    token = _forged(identity, kid="attacker-key")
    headers = {"Authorization": f"Bearer {token}"}
    for service, path in (
        (world.allocation, f"/teams/{HUB}/work"),
        (world.signoff, f"/teams/{MANAGEMENT_TEAM}/incoming-requests"),
        (world.access, "/users/cw-enf-1/p30s"),
    ):
        response = await service.http.get(path, headers=headers)
        reason = refused(response, 401, "TR05", "Attack", world.items["anna"], "cw-enf-1")
        assert "unknown key 'attacker-key'" in reason


async def test_tr05_expired_forged_token_naming_the_providers_key_is_401(
    world: World, identity: DevIdentityProvider
) -> None:
    """An expired token cannot be had from the provider: forged with another key, it names the
    provider's own key id (or none, as the provider's single key has none), and is refused."""
    async with httpx.AsyncClient() as http:
        config = (await http.get(f"{identity.issuer}/.well-known/openid-configuration")).json()
        keys = (await http.get(config["jwks_uri"])).json()["keys"]
    token = _forged(identity, kid=keys[0].get("kid"), expired=True)
    response = await world.allocation.http.get(
        "/work-items", params={"person_name": "a"}, headers={"Authorization": f"Bearer {token}"}
    )
    reason = refused(response, 401, "TR05", "Attack")
    assert "invalid sign-in token" in reason or "expired" in reason


async def test_tr05_token_with_no_or_a_symmetric_algorithm_is_401(
    world: World, identity: DevIdentityProvider
) -> None:
    now = int(time.time())
    claims: dict[str, object] = {"iss": identity.issuer, "aud": "casework"}
    claims |= {"sub": SO_MGMT.user_id, "iat": now, "exp": now + 3600}
    for alg, key in (("none", None), ("HS256", "a guessed secret, thirty-two bytes long")):
        token = jwt.encode(claims, key, algorithm=alg)  # type: ignore[arg-type]
        response = await world.access.http.get(
            "/p30s/outstanding", headers={"Authorization": f"Bearer {token}"}
        )
        assert f"algorithm '{alg}' is not accepted" in refused(response, 401, "TR05", "p30_id")


# --- A valid token, outside the reader's scope ------------------------------------------------


async def test_tr05_al10_unknown_user_with_a_valid_token_sees_nothing(world: World) -> None:
    stranger = f"stranger-{uuid.uuid4().hex[:8]}"
    alloc, signoff, access = world.allocation, world.signoff, world.access
    assert (await alloc.get(stranger, "/teams")).json() == {"teams": []}
    found = (await alloc.get(stranger, "/work-items", person_name="a")).json()
    assert found["work_items"] == []
    mine = (await alloc.get(stranger, "/me/work")).json()
    assert (mine["incoming_work"], mine["incomplete_work"], mine["positions"]) == ([], [], [])
    anna, person = world.items["anna"], world.persons["anna"]
    refused(await alloc.get(stranger, f"/teams/{HUB}/work"), 403, "AL10", anna)
    refused(await alloc.get(stranger, f"/work-items/{anna}"), 403, "AL10", "Anna")
    refused(await alloc.get(stranger, f"/persons/{person}"), 403, "AL10", "Anna")
    refused(await signoff.get(stranger, f"/teams/{MANAGEMENT_TEAM}/incoming-requests"), 403, "AL10")
    refused(await signoff.get(stranger, f"/steps/{world.items['amos-ta']}"), 403, "SO03", "Amos")
    refused(await access.get(stranger, "/me/positions"), 403, "TR05")
    assert (await access.get(stranger, "/me/p30s")).json() == {"p30s": []}
    assert (await access.get(stranger, "/p30s/outstanding")).json() == {"outstanding": []}
    refused(await access.get(stranger, "/users/cw-enf-1/positions"), 403, "TR05", "pos-cw")


async def test_al10_tr05_worker_cannot_read_another_workers_work(world: World) -> None:
    alloc = world.allocation
    alan, alan_person = world.items["alan"], world.persons["alan"]
    refused(await alloc.get(HUB_1.user_id, "/workers/pos-hub-2/work"), 403, "AL10", alan)
    refused(await alloc.get(HUB_1.user_id, f"/work-items/{alan}"), 403, "AL10", "Alan")
    refused(await alloc.get(HUB_1.user_id, f"/persons/{alan_person}"), 403, "AL10", "Alan")
    history = await alloc.get(HUB_1.user_id, f"/persons/{alan_person}/history")
    refused(history, 403, "AL10", alan)
    # Their own work, by position or across their positions, is theirs to read.
    own = (await alloc.get(HUB_1.user_id, "/workers/pos-hub-1/work")).json()
    assert ids(own["incoming_work"]) == {world.items["anna"]}
    mine = (await alloc.get(HUB_1.user_id, "/me/work")).json()
    assert ids(mine["incoming_work"] + mine["incomplete_work"]) == {world.items["anna"]}


async def test_al10_tr05_worker_or_senior_officer_cannot_read_another_teams_work(
    world: World,
) -> None:
    alloc = world.allocation
    amos_triage = world.items["amos"]
    # A Hub worker screens nothing: not even their own team's queue, nor another team's.
    for path in (f"/teams/{HUB}/work", f"/teams/{NORTH}/work", f"/queues/inbox/{NORTH_INBOX}/work"):
        refused(await alloc.get(HUB_1.user_id, path), 403, "AL10", amos_triage)
    refused(await alloc.get(TA_NORTH.user_id, f"/teams/{HUB}"), 403, "AL10", "pos-hub-1")
    # The North Senior Officer screens North, not the Hub Team or its workers.
    refused(await alloc.get(SO_NORTH.user_id, f"/teams/{HUB}/work"), 403, "AL10", amos_triage)
    refused(await alloc.get(SO_NORTH.user_id, "/workers/pos-hub-1/work"), 403, "AL10")
    teams = (await alloc.get(SO_NORTH.user_id, "/teams")).json()["teams"]
    assert [t["unit_id"] for t in teams] == [NORTH]
    north = (await alloc.get(SO_NORTH.user_id, f"/workers/{TA_NORTH.position_id}/work")).json()
    assert ids(north["incoming_work"]) == {world.items["amos-ta"]}


async def test_al10_wellbeing_senior_officer_cannot_read_the_appeals_hopper(world: World) -> None:
    """The Management Team sees the Wellbeing teams' work, never the other organisation's."""
    alloc = world.allocation
    abigail, person = world.items["abigail"], world.persons["abigail"]
    for path in (
        f"/queues/hopper/{APPEALS_HOPPER}/work",
        f"/teams/{APPEALS_TEAM}/work",
        f"/teams/{APPEALS_TEAM}",
        f"/work-items/{abigail}",
        f"/persons/{person}",
    ):
        reason = refused(await alloc.get(SO_MGMT.user_id, path), 403, "AL10", abigail, "Abigail")
        assert SO_MGMT.user_id in reason
    teams = {t["unit_id"] for t in (await alloc.get(SO_MGMT.user_id, "/teams")).json()["teams"]}
    assert teams == set(allocation_domain.TEAMS)
    search = await alloc.get(SO_MGMT.user_id, "/work-items", person_name="Abigail")
    assert search.json()["work_items"] == []
    # A person known to both organisations: only the Wellbeing work is found.
    anna = await alloc.get(SO_MGMT.user_id, "/work-items", person_name="Anna")
    assert ids(anna.json()["work_items"]) == {world.items["anna"]}
    # The Appeals team leader, in that organisation, reads it.
    hopper = await alloc.get(TL_APPEALS.user_id, f"/queues/hopper/{APPEALS_HOPPER}/work")
    assert ids(hopper.json()["incoming_work"]) == {abigail, world.items["anna-appeals"]}


async def test_tr05_user_cannot_read_another_users_positions_or_p30s_by_changing_the_path(
    world: World,
) -> None:
    access = world.access
    for view in ("positions", "p30s", "removals", "telephony"):
        response = await access.get(CW_ENF_1.user_id, f"/users/cw-enf-2/{view}")
        reason = refused(response, 403, "TR05", "pos-cw-enf-2", "team-enf-1")
        assert "cw-enf-2" in reason
        other_org = await access.get(TL_APPEALS.user_id, f"/users/cw-enf-1/{view}")
        refused(other_org, 403, "TR05", "pos-cw-enf-1")
    # The personal views exist only under /me: the user comes from the token, not the path.
    for view in ("my-service-requests", "segment-list", "team-view"):
        assert (await access.get(CW_ENF_1.user_id, f"/users/cw-enf-2/{view}")).status_code == 404
    mine = (await access.get(CW_ENF_1.user_id, "/me/positions")).json()
    assert (mine["user_id"], mine["primary"]["position_id"]) == ("cw-enf-1", "pos-cw-enf-1")
    # Those responsible read a member's records: the team leader, the access team.
    theirs = (await access.get(TL_ENF_1.user_id, "/users/cw-enf-1/positions")).json()
    assert theirs["primary"]["position_id"] == "pos-cw-enf-1"
    audit = await access.get(ADMIN.user_id, "/users/cw-enf-2/p30s")
    assert audit.status_code == 200 and audit.json() == {"p30s": []}


async def test_al08_tr05_search_by_person_name_returns_only_permitted_items(
    world: World,
) -> None:
    """`/work-items?person_name=a` matches every person here; each reader gets exactly the
    items they may see."""
    i = world.items
    expected = {
        HUB_1: {i["anna"]},
        HUB_2: {i["alan"]},
        TA_NORTH: {i["amos-ta"]},
        SO_HUB: {i["anna"], i["alan"], i["amos"]},
        SO_NORTH: {i["amos-ta"]},
        SO_MGMT: {i["anna"], i["alan"], i["amos"], i["amos-ta"]},
        TL_APPEALS: {i["abigail"], i["anna-appeals"]},
        CW_ENF_1: set(),
    }
    for reader, items in expected.items():
        found = await world.allocation.get(reader.user_id, "/work-items", person_name="a")
        assert ids(found.json()["work_items"]) == items, reader.user_id


async def test_al10_tr05_person_record_only_with_some_visible_work_of_that_person(
    world: World,
) -> None:
    alloc = world.allocation
    anna, amos = world.persons["anna"], world.persons["amos"]
    refused(await alloc.get(HUB_2.user_id, f"/persons/{anna}"), 403, "AL10", "Anna")
    refused(await alloc.get(SO_SOUTH.user_id, f"/persons/{amos}"), 403, "AL10", "Amos")
    record = (await alloc.get(HUB_1.user_id, f"/persons/{anna}")).json()
    assert record["person"]["name"] == "Anna Attack"
    # Only the reader's own organisation's part of the record: not the agency's work of the
    # same person, nor its history.
    appeals = world.items["anna-appeals"]
    assert ids(record["current_work"] + record["documents"]) == {world.items["anna"]}
    assert appeals not in {h["work_item_id"] for h in record["work_history"]}
    history = (await alloc.get(HUB_1.user_id, f"/persons/{anna}/history")).json()
    assert {h["work_item_id"] for h in history["work_history"]} == {world.items["anna"]}
    agency = (await alloc.get(TL_APPEALS.user_id, f"/persons/{anna}")).json()
    assert ids(agency["current_work"]) == {appeals}
    assert world.items["anna"] not in {h["work_item_id"] for h in agency["work_history"]}
    assessor = (await alloc.get(TA_NORTH.user_id, f"/persons/{amos}")).json()
    assert world.items["amos-ta"] in ids(assessor["current_work"])


async def test_so03_al10_tr05_signoff_reads_are_for_the_steps_worker_and_officers(
    world: World,
) -> None:
    signoff, step = world.signoff, world.items["amos-ta"]
    for reader in (TA_SOUTH, SO_NORTH, HUB_1):
        refused(await signoff.get(reader.user_id, f"/steps/{step}"), 403, "SO03", "Amos", "pos-ta")
    requests = f"/teams/{MANAGEMENT_TEAM}/incoming-requests"
    for reader in (TA_NORTH, SO_NORTH):
        refused(await signoff.get(reader.user_id, requests), 403, "AL10")
    assert (await signoff.get(TA_NORTH.user_id, f"/steps/{step}")).json()["step_id"] == step
    assert (await signoff.get(SO_MGMT.user_id, requests)).status_code == 200


async def test_ac19_tr05_caseworker_cannot_read_the_team_view(world: World) -> None:
    """AC19: the team view (the team's caseworkers and their work) is a team leader's; a
    caseworker reads only their own service requests (AC18)."""
    response = await world.access.get(CW_ENF_1.user_id, "/me/team-view")
    reason = refused(response, 403, "AC19", "pos-cw-enf-2", "caseworkers")
    assert "team leaders" in reason
    mine = (await world.access.get(CW_ENF_1.user_id, "/me/my-service-requests")).json()
    assert mine["position_id"] == CW_ENF_1.position_id
    view = (await world.access.get(TL_ENF_1.user_id, "/me/team-view")).json()
    assert {"pos-cw-enf-1", "pos-cw-enf-2"} <= {c["position_id"] for c in view["caseworkers"]}


async def test_ac20_tr05_only_the_access_team_reads_the_p30s_to_action(world: World) -> None:
    """AC20: the queue of P30s and emergency requests awaiting the access team is the access
    team's; a team leader, a caseworker or a stranger is refused, naming the rule."""
    for reader in (TL_ENF_1.user_id, CW_ENF_1.user_id, f"stranger-{uuid.uuid4().hex[:8]}"):
        refused(await world.access.get(reader, "/p30s/to-action"), 403, "AC20")
    queue = await world.access.get("flls-1", "/p30s/to-action")
    assert queue.status_code == 200 and isinstance(queue.json()["p30s"], list)


async def test_tr05_ac18_segment_list_write_needs_a_token_and_a_json_body(world: World) -> None:
    """A write takes the token in a header and a JSON body: a cross-site form (which sends
    neither) cannot make one, a cookie is no sign-in."""
    access = world.access
    path = f"/me/segment-list/{uuid.uuid4()}/complete"
    refused(await access.http.post(path, data={"confirm": "yes"}), 401, "TR05")
    token = await access.users.token(CW_ENF_1.user_id) if access.users else ""
    cookie_only = await access.http.post(path, json={}, headers={"Cookie": f"session={token}"})
    refused(cookie_only, 401, "TR05")
    form = await access.http.post(
        path, data={"confirm": "yes"}, headers={"Authorization": f"Bearer {token}"}
    )
    refused(form, 415, "TR05")
    completed = await access.post(CW_ENF_1.user_id, path, {})
    assert completed.status_code == 409 and completed.json()["rule"] == "AC18"
