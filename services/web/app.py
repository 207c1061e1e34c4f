"""The web service's pages (Starlette + Jinja2, GOV.UK Frontend): sign-in and sign-out, the
header (who, current position with a switch, unread notices), the team workview, Update
assignment and the person summary. Each page reads the services' read APIs with the signed-in
person's own token (TR05); each form is checked against the session's CSRF token and sent
through the edge's command API as that person, in their current position; its outcome, or the
refusal with its rule, is shown on the next page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jinja2
from alembic import command
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.allocation import StepType
from contracts.signoff import NEXT_ACTION_STEPS
from services.shared import db, identity, logs
from services.shared.settings import Settings
from services.web import views
from services.web.sessions import (
    COOKIE,
    DatabaseSessions,
    MemorySessions,
    Session,
    SessionStore,
)
from services.web.settings import WebSettings
from services.web.signin import BrowserSignIn, SignInFailed

log = logs.get(__name__)

HERE = Path(__file__).resolve().parent
MIGRATIONS = HERE / "migrations"
SESSION_SCOPE = "casework.web.session"  # the request's session, saved before it is answered
NODE = HERE / "node_modules"
MAX_FORM_BYTES = 64 * 1024
SERVICES = ("edge", "allocation", "signoff", "access", "notifications")
# The directory the forms name their choices from, unless CASEWORK_WEB_DIRECTORY_FILE says.
DIRECTORY = HERE.parent / "access" / "walkthrough_directory.json"
# SO01: the steps whose mandatory request goes to the Management Team before they finish.
SIGNOFF_STEPS = frozenset({StepType.TRUSTED_ASSESSMENT.value, StepType.SUPPORT_PLAN_DELIVERY.value})


class SignInNeeded(Exception):
    pass


class ReadRefused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(HERE / "templates"),
                jinja2.PrefixLoader(
                    {"govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja")}
                ),
            ]
        ),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["q"] = _q
    return env


class Web:
    def __init__(
        self,
        settings: Settings,
        web: WebSettings,
        clients: dict[str, httpx.AsyncClient] | None = None,
    ) -> None:
        self.settings, self.web = settings, web
        urls = {
            "edge": web.edge_url,
            "allocation": web.allocation_url,
            "signoff": web.signoff_url,
            "access": web.access_url,
            "notifications": web.notifications_url,
        }
        self.clients = clients or {
            name: httpx.AsyncClient(base_url=urls[name], timeout=40.0) for name in SERVICES
        }
        self.public_url = web.public_url.rstrip("/")
        self.secure = self.public_url.startswith("https://")
        verifier = identity.SignInVerifier(
            settings.oidc_issuer,
            settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            leeway_seconds=settings.clock_leeway_seconds,
            roles_claim=settings.oidc_roles_claim,
        )
        self.signin = BrowserSignIn(
            settings.oidc_issuer,
            settings.oidc_audience,
            web.client_secret,
            f"{self.public_url}/signed-in",
            verifier,
        )
        self.sessions: SessionStore = (
            DatabaseSessions(
                db.create_engine(settings),
                web.session_key.get_secret_value(),
                web.session_idle_seconds,
            )
            if database_configured(settings)
            else MemorySessions(web.session_idle_seconds)
        )
        self.env = templates()
        directory = Path(web.directory_file) if web.directory_file else DIRECTORY
        self.catalogue = views.Catalogue.from_directory(json.loads(directory.read_text()))

    # --- plumbing: the session, reads as the person, commands as the person ---------------------

    async def start(self) -> None:
        """The sessions' schema brought to the newest revision (several instances at once are
        safe: the migration holds an advisory lock)."""
        if isinstance(self.sessions, DatabaseSessions):
            await migrate(self.settings)
        log.info("web sessions", store=self.sessions.kind)

    async def session(self, request: Request) -> Session:
        """The signed-in person's session; whatever the request changes in it is saved before
        the answer is sent (`SavingSessions`)."""
        found = request.scope.get(SESSION_SCOPE)
        if isinstance(found, Session):
            return found
        session = await self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise SignInNeeded
        request.scope[SESSION_SCOPE] = session
        return session

    async def token(self, session: Session) -> str:
        if session.tokens.expires_at - 30 < time.time():
            try:
                session.tokens = await self.signin.refresh(session.tokens)
            except (SignInFailed, identity.SignInError):
                raise SignInNeeded from None
        return session.tokens.id_token

    async def read(self, session: Session, service: str, path: str, **params: str) -> Any:
        """GET a read API as the person (TR05); a refusal is shown with its rule."""
        answer = await self.clients[service].get(
            path,
            params=params or None,
            headers={"Authorization": f"Bearer {await self.token(session)}"},
        )
        if answer.status_code == 401:
            raise SignInNeeded
        if answer.status_code != 200:
            raise ReadRefused(answer.status_code, _json(answer))
        return answer.json()

    async def current_position(self, session: Session) -> tuple[list[views.Position], str | None]:
        """AC17: the person's positions and the one they act in, from access."""
        with contextlib.suppress(ReadRefused, httpx.HTTPError):
            found = views.positions(await self.read(session, "access", "/me/positions"))
            current = next((p.position_id for p in found if p.current), None)
            return found, current
        return [], None

    async def send(
        self, session: Session, command_type: str, body: dict[str, Any], form_id: str
    ) -> tuple[int, dict[str, Any]]:
        """A command through the edge as the person, in their current position; the form's id
        is the idempotency key, so a form sent twice is one command."""
        _, position = await self.current_position(session)
        headers = {"Authorization": f"Bearer {await self.token(session)}"}
        if position:
            headers["X-Acting-Position"] = position
        if form_id:
            headers["Idempotency-Key"] = form_id[:100]
        answer = await self.clients["edge"].post(
            f"/commands/{command_type}", json=body, headers=headers
        )
        return answer.status_code, _json(answer)

    async def page(
        self, request: Request, session: Session, template: str, status: int = 200, **ctx: Any
    ) -> Response:
        positions, current = await self.current_position(session)
        unread = None
        with contextlib.suppress(ReadRefused, httpx.HTTPError):
            unread = (await self.read(session, "notifications", "/me/inbox/unread-count"))["unread"]
        flash, session.flash = session.flash, None
        html = self.env.get_template(template).render(
            user=session.tokens.principal,
            positions=positions,
            current=next((p for p in positions if p.position_id == current), None),
            unread=unread,
            unread_poll_ms=int(self.web.unread_poll_seconds * 1000),
            csrf=session.csrf,
            form_id=uuid.uuid4().hex,
            outcome=views.Outcome.from_json(flash) if flash else None,
            path=request.url.path,
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    async def form(self, request: Request) -> tuple[Session, dict[str, str]]:
        """A posted form of a signed-in person, with the session's CSRF token."""
        session = await self.session(request)
        form = await _form_fields(request)
        if not session.csrf_ok(form.get("csrf_token")):
            raise CsrfRefused
        return session, form

    # --- sign-in and sign-out -------------------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        after = request.query_params.get("next", "/teams")
        started, location = await self.signin.start(_back(after))  # a path of this service
        await self.sessions.begin(started)
        return RedirectResponse(location, status_code=303)

    async def signed_in(self, request: Request) -> Response:
        started = await self.sessions.returned(request.query_params.get("state", ""))
        code = request.query_params.get("code")
        if started is None or not code:
            return self.plain("Sign-in failed", "The sign-in did not come back as expected.", 400)
        try:
            tokens = await self.signin.finish(started, code)
        except (SignInFailed, identity.SignInError) as failed:
            log.info("sign-in refused", reason=str(failed))
            return self.plain("Sign-in failed", "The identity provider's answer was refused.", 400)
        await self.sessions.drop(request.cookies.get(COOKIE))  # a fresh id at every sign-in
        answer = RedirectResponse(started.after, status_code=303)
        answer.set_cookie(
            COOKIE,
            await self.sessions.create(tokens),
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        return answer

    async def sign_out(self, request: Request) -> Response:
        await self.form(request)
        request.scope.pop(SESSION_SCOPE, None)
        await self.sessions.drop(request.cookies.get(COOKIE))
        answer = RedirectResponse("/signed-out", status_code=303)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure)
        return answer

    async def signed_out(self, _: Request) -> Response:
        return self.plain("You have signed out", "Sign in again to carry on.", 200, sign_in=True)

    def plain(self, title: str, text: str, status: int, sign_in: bool = False) -> Response:
        html = self.env.get_template("plain.html").render(title=title, text=text, sign_in=sign_in)
        return HTMLResponse(html, status_code=status)

    # --- the header -----------------------------------------------------------------------------

    async def change_position(self, request: Request) -> Response:
        """AC17: the switch in the header; views and permissions follow the chosen position."""
        session, form = await self.form(request)
        body = {"user_id": session.user_id, "position_id": form.get("position_id", "")}
        positions, _ = await self.current_position(session)
        status, answer = await self.send(
            session, "access.change_position.v1", body, form.get("form_id", "")
        )
        labels = {p.position_id: p.label for p in positions}
        session.flash = views.outcome(status, answer, labels).to_json()
        return RedirectResponse(_back(form.get("back")), status_code=303)

    async def unread(self, request: Request) -> Response:
        """The unread count the header polls (the notification inbox)."""
        session = await self.session(request)
        count = await self.read(session, "notifications", "/me/inbox/unread-count")
        return JSONResponse({"unread": count["unread"]})

    # --- the team workview (AL04) ---------------------------------------------------------------

    async def teams(self, request: Request) -> Response:
        session = await self.session(request)
        summary = await self.read(session, "allocation", "/teams")
        return await self.page(request, session, "teams.html", teams=summary["teams"])

    async def team(self, request: Request) -> Response:
        session = await self.session(request)
        team = request.path_params["team"]
        work = await self.read(session, "allocation", f"/teams/{_q(team)}/work", **_paging(request))
        members = await self.read(session, "allocation", f"/teams/{_q(team)}")
        return await self.page(
            request,
            session,
            "team.html",
            team=team,
            work=work,
            members=members,
            **_pages(work, request),
        )

    # --- Update assignment (AL06, AL07, AL16) ---------------------------------------------------

    async def assign_form(self, request: Request) -> Response:
        session = await self.session(request)
        item_id = request.path_params["work_item_id"]
        source = "team" if request.query_params.get("from") == "team" else "record"
        item = await self.read(session, "allocation", f"/work-items/{_q(item_id)}")
        name = request.query_params.get("name", "").strip()
        found = await self.find_workers(session, name)
        return await self.page(
            request,
            session,
            "assign.html",
            item=item,
            source=source,
            team=request.query_params.get("team", ""),
            name=name,
            found=found,
            fields=views.assignment_fields(source),
            priorities=views.PRIORITIES,
        )

    async def assign(self, request: Request) -> Response:
        session, form = await self.form(request)
        source = "team" if form.get("source") == "team" else "record"
        body = views.assign_command(form, source)
        status, answer = await self.send(
            session, "allocation.assign_work.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, session.worker_names).to_json()
        back = (
            f"/teams/{_q(form['team'])}"
            if source == "team" and form.get("team")
            else f"/persons/{_q(body['person_id'])}"
        )
        return RedirectResponse(back, status_code=303)

    # --- the person summary (AL04, AL12, AL15) --------------------------------------------------

    async def person(self, request: Request) -> Response:
        session = await self.session(request)
        person_id = request.path_params["person_id"]
        record = await self.read(session, "allocation", f"/persons/{_q(person_id)}")
        positions, current = await self.current_position(session)
        acting = next((p for p in positions if p.position_id == current), None)
        return await self.page(
            request,
            session,
            "person.html",
            record=record,
            resumable=views.resumable(record.get("current_work", []), acting),
        )

    async def resume_step(self, request: Request) -> Response:
        """AL13: a Generic Support Officer resumes Case Monitoring from the person's current
        work; it opens as their step (its sections), or the refusal is shown on the record."""
        session, form = await self.form(request)
        body = {
            "person_id": form.get("person_id", ""),
            "work_item_id": form.get("work_item_id", ""),
        }
        status, answer = await self.send(
            session, "allocation.resume_step.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, self.names(session)).to_json()
        back = (
            f"/work/{_q(body['work_item_id'])}"
            if status == 200
            else f"/persons/{_q(body['person_id'])}"
        )
        return RedirectResponse(back, status_code=303)

    # --- Worker relationships -> Add (AL16) -----------------------------------------------------

    async def relationship_form(self, request: Request) -> Response:
        session = await self.session(request)
        person_id = request.path_params["person_id"]
        record = await self.read(session, "allocation", f"/persons/{_q(person_id)}")
        types = (await self.read(session, "allocation", "/relationship-types"))[
            "relationship_types"
        ]
        name = request.query_params.get("name", "").strip()
        found = await self.find_workers(session, name)
        return await self.page(
            request,
            session,
            "relationship.html",
            person=record["person"],
            types=types,
            name=name,
            found=found,
            today=datetime.now(UTC).date(),
        )

    async def add_relationship(self, request: Request) -> Response:
        session, form = await self.form(request)
        types = (await self.read(session, "allocation", "/relationship-types"))[
            "relationship_types"
        ]
        body = views.relationship_command(form, types)
        status, answer = await self.send(
            session, "allocation.record_worker_relationship.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, session.worker_names).to_json()
        return RedirectResponse(f"/persons/{_q(body['person_id'])}", status_code=303)

    async def find_workers(self, session: Session, name: str) -> list[dict[str, Any]]:
        """AL16: "Find" a worker by name, among those the reader may allocate to."""
        if not name:
            return []
        found: list[dict[str, Any]] = (
            await self.read(session, "allocation", "/workers", name=name)
        )["workers"]
        session.worker_names.update({w["position_id"]: w["name"] for w in found})
        return found

    # --- Bulk assign (AL08) ---------------------------------------------------------------------

    async def bulk_form(self, request: Request) -> Response:
        session = await self.session(request)
        return await self.bulk_page(request, session, "", "")

    async def bulk_page(
        self,
        request: Request,
        session: Session,
        person_name: str,
        name: str,
        form: dict[str, str] | None = None,
        ticked: list[str] | None = None,
        preview: list[dict[str, Any]] | None = None,
    ) -> Response:
        items: list[dict[str, Any]] = []
        if person_name:
            items = (
                await self.read(session, "allocation", "/work-items", person_name=person_name)
            )["work_items"]
        return await self.page(
            request,
            session,
            "bulk.html",
            person_name=person_name,
            name=name,
            items=items,
            found=await self.find_workers(session, name),
            form=form or {},
            ticked=set(ticked or []),
            preview={str(p["work_item_id"]): p for p in preview or []},
            previewed=preview is not None,
        )

    async def bulk(self, request: Request) -> Response:
        session, form = await self.form(request)
        ticked = [v for k, v in form.items() if k.startswith("item-")]
        body = views.bulk_command(form, ticked)
        if form.get("action") == "search":  # posted: a person's name stays out of the URL
            return await self.bulk_page(
                request,
                session,
                form.get("person_name", "").strip(),
                form.get("name", "").strip(),
            )
        if form.get("action") == "preview":  # changes nothing: each item's outcome
            status, answer = await self.send(
                session, "allocation.preview_bulk_assign.v1", body, form.get("form_id", "")
            )
            preview = views.bulk_preview(status, answer)
            if preview is None:
                session.flash = views.outcome(status, answer).to_json()
            return await self.bulk_page(
                request,
                session,
                form.get("person_name", ""),
                form.get("name", ""),
                form,
                ticked,
                preview,
            )
        status, answer = await self.send(
            session, "allocation.bulk_assign.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, session.worker_names).to_json()
        return RedirectResponse("/bulk-assign", status_code=303)

    # --- Sign-off (SO01-SO03, SO07) -------------------------------------------------------------

    async def signoff_requests(self, request: Request) -> Response:
        """SO01, SO02: a team's incoming requests (the Management Team's), titled request name
        + step name."""
        session = await self.session(request)
        team = request.path_params["team"]
        found = await self.read(session, "signoff", f"/teams/{_q(team)}/incoming-requests")
        return await self.page(
            request, session, "requests.html", team=team, requests=found["incoming_requests"]
        )

    async def step_summary(self, request: Request) -> Response:
        """SO03: the Workflow Step Summary, with Completed or Returned for an outstanding
        request (SO07)."""
        session = await self.session(request)
        step_id = request.path_params["step_id"]
        step = await self.read(session, "signoff", f"/steps/{_q(step_id)}")
        outstanding = [r for r in step["requests"] if r["state"] == "outstanding"]
        return await self.page(
            request,
            session,
            "step.html",
            step=step,
            outstanding=outstanding[-1] if outstanding else None,
            team=request.query_params.get("team", ""),
        )

    async def finish(self, request: Request) -> Response:
        """SO05, SO08, SO09: Finish; a refusal comes back with its rule."""
        session, form = await self.form(request)
        body = {"step_id": form.get("step_id", ""), "person_id": form.get("person_id", "")}
        status, answer = await self.send(
            session, "signoff.finish_step.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer).to_json()
        return RedirectResponse(f"/steps/{_q(body['step_id'])}", status_code=303)

    async def decide(self, request: Request) -> Response:
        session, form = await self.form(request)
        command_type, body = views.decision_command(form)
        status, answer = await self.send(session, command_type, body, form.get("form_id", ""))
        session.flash = views.outcome(status, answer).to_json()
        return RedirectResponse(f"/steps/{_q(body['step_id'])}", status_code=303)

    # --- A worker's current work and step (AL03, AL13, SO01, SO04, SO05, SO08-SO10) ---------

    async def my_work(self, request: Request) -> Response:
        """The signed-in worker's current work across their positions; each step opens."""
        session = await self.session(request)
        work = await self.read(session, "allocation", "/me/work", **_paging(request))
        return await self.page(request, session, "my_work.html", work=work, **_pages(work, request))

    async def queue_work(self, request: Request) -> Response:
        """A worker's or an inbox's current work, from the team summary's caseloads (AL04)."""
        session = await self.session(request)
        kind, owner = request.path_params["kind"], request.path_params["owner_id"]
        path = (
            f"/workers/{_q(owner)}/work"
            if kind == "worker"
            else f"/queues/{_q(kind)}/{_q(owner)}/work"
        )
        work = await self.read(session, "allocation", path, **_paging(request))
        team = request.query_params.get("team", "")
        title = session.worker_names.get(owner, owner) if kind == "worker" else owner
        return await self.page(
            request,
            session,
            "queue.html",
            work=work,
            team=team,
            owner_title=title,
            **_pages(work, request),
        )

    def names(self, session: Session) -> dict[str, str]:
        """Position, unit and user ids as a person reads them, for outcomes."""
        found = {u.unit_id: u.name for u in self.catalogue.units.values()}
        for p in self.catalogue.people.values():
            found[p.user_id] = p.name
            if p.position_id:
                found[p.position_id] = p.name
        return {**found, **session.worker_names}

    async def work_step(self, request: Request) -> Response:
        """The worker's step: Start, the sections, Save, next actions (Add / Add and close), the
        mandatory request (SO01) and Finish, disabled with the reasons that block it."""
        session = await self.session(request)
        item_id = request.path_params["work_item_id"]
        item = await self.read(session, "allocation", f"/work-items/{_q(item_id)}")
        step: dict[str, Any] | None = None
        try:
            step = await self.read(session, "signoff", f"/steps/{_q(item_id)}")
        except ReadRefused as refused:
            if refused.status != 404:  # 404: sign-off has not opened the form yet
                raise
        signoff_step = item["step_type"] in SIGNOFF_STEPS
        _, current = await self.current_position(session)
        # the step's own worker, or a sign-off officer who resumed it into the sections (SO03)
        worker_view = item["owner_kind"] == "worker" and item["owner_id"] == current
        find = request.query_params.get("find", "").strip()
        found = self.catalogue.find_workers(find)
        session.worker_names.update({w["position_id"]: w["name"] for w in found})
        names = self.names(session)
        return await self.page(
            request,
            session,
            "work_step.html",
            item=item,
            step=step,
            started=item["state"] == "incomplete",
            signoff_step=signoff_step,
            blockers=views.finish_blockers(step, signoff_step, worker_view) if step else [],
            worker_view=worker_view,
            may_send=bool(step) and views.may_send_request(step or {}, signoff_step),
            adding=request.query_params.get("adding") == "1" or bool(find),
            find=find,
            found=found,
            action_types=list(NEXT_ACTION_STEPS),
            teams=[
                u for u in self.catalogue.units.values() if u.kind == "team" and not u.parent_id
            ],
            priorities=views.PRIORITIES,
            names=names,
        )

    async def _step_command(
        self, request: Request, command_type: str, body_of: Any, back: str = ""
    ) -> Response:
        session, form = await self.form(request)
        item_id = request.path_params["work_item_id"]
        body = body_of(form)
        status, answer = await self.send(session, command_type, body, form.get("form_id", ""))
        session.flash = views.outcome(status, answer, self.names(session)).to_json()
        return RedirectResponse(f"/work/{_q(item_id)}{back}", status_code=303)

    async def start_step(self, request: Request) -> Response:
        """AL03: incoming -> incomplete."""
        return await self._step_command(
            request,
            "allocation.start_step.v1",
            lambda f: {"person_id": f.get("person_id", ""), "work_item_id": f.get("step_id", "")},
        )

    async def save_step(self, request: Request) -> Response:
        """SO09: Save keeps the step open."""
        session = await self.session(request)
        item_id = request.path_params["work_item_id"]
        step = await self.read(session, "signoff", f"/steps/{_q(item_id)}")
        return await self._step_command(
            request,
            "signoff.save_step.v1",
            lambda f: {
                "step_id": f.get("step_id", ""),
                "person_id": f.get("person_id", ""),
                "answers": views.step_answers(f, step["sections"]),
            },
        )

    async def add_next_action(self, request: Request) -> Response:
        """SO04: Add (the form stays open for another) or Add and close."""
        session, form = await self.form(request)
        item_id = request.path_params["work_item_id"]
        status, answer = await self.send(
            session,
            "signoff.add_next_actions.v1",
            views.next_action_command(form),
            form.get("form_id", ""),
        )
        session.flash = views.outcome(status, answer, self.names(session)).to_json()
        again = form.get("action") == "add" or status != 200
        return RedirectResponse(
            f"/work/{_q(item_id)}" + ("?adding=1#add-next-action" if again else "#next-actions"),
            status_code=303,
        )

    async def remove_next_action(self, request: Request) -> Response:
        """SO10: until the step is finished a next action can be removed."""
        return await self._step_command(
            request,
            "signoff.remove_next_action.v1",
            lambda f: {
                "step_id": f.get("step_id", ""),
                "person_id": f.get("person_id", ""),
                "action_id": f.get("action_id", ""),
            },
        )

    async def send_request(self, request: Request) -> Response:
        """SO01: the mandatory request to the Management Team's incoming requests."""
        return await self._step_command(
            request,
            "signoff.send_request.v1",
            lambda f: {"step_id": f.get("step_id", ""), "person_id": f.get("person_id", "")},
        )

    async def finish_work_step(self, request: Request) -> Response:
        """SO05, SO08, SO09 (AL13): the worker finishes triage or Case Monitoring."""
        return await self._step_command(
            request,
            "signoff.finish_step.v1",
            lambda f: {"step_id": f.get("step_id", ""), "person_id": f.get("person_id", "")},
        )

    # --- Agency (AC17-AC19) ---------------------------------------------------------------------

    async def my_service_requests(self, request: Request) -> Response:
        """AC18: only the open items of the current position."""
        session = await self.session(request)
        mine = await self.read(session, "access", "/me/my-service-requests")
        return await self.page(
            request,
            session,
            "agency_list.html",
            title="My service requests",
            items=mine["items"],
            read_only=False,
        )

    async def segment_list(self, request: Request) -> Response:
        """AC18: every open item of the user across positions, with no completing from it."""
        session = await self.session(request)
        listed = await self.read(session, "access", "/me/segment-list")
        return await self.page(
            request,
            session,
            "agency_list.html",
            title="Personal SR segment list view",
            items=listed["items"],
            read_only=True,
        )

    async def work_management(self, request: Request) -> Response:
        """AC19: the team's caseworkers and hopper, for its team leader's current position."""
        session = await self.session(request)
        view = await self.read(session, "access", "/me/team-view")
        return await self.page(request, session, "work_management.html", view=view)

    async def assign_from_hopper(self, request: Request) -> Response:
        """AC19: from the hopper to one of that team's caseworkers (allocation decides)."""
        session, form = await self.form(request)
        body = views.assign_command(form, "record")
        status, answer = await self.send(
            session, "allocation.assign_work.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, session.worker_names).to_json()
        return RedirectResponse("/work-management", status_code=303)

    # --- Secondary access (AC04, AC06-AC16, AC20-AC22) -----------------------------------------

    async def _primary_unit(self, session: Session) -> str | None:
        with contextlib.suppress(ReadRefused, httpx.HTTPError):
            mine = await self.read(session, "access", "/me/positions")
            return str((mine.get("primary") or {}).get("unit_id") or "") or None
        return None

    async def _access_team(self, session: Session) -> bool:
        with contextlib.suppress(ReadRefused, httpx.HTTPError):
            await self.read(session, "access", "/p30s/to-action")
            return True
        return False

    async def access_home(self, request: Request) -> Response:
        """The secondary access screens: the people a TL/SM asks access for, the forms, reviews
        due, and the access team's P30s to action."""
        session = await self.session(request)
        people = views.managed_people(
            self.catalogue, await self._primary_unit(session), session.user_id
        )
        outstanding = (await self.read(session, "access", "/p30s/outstanding"))["outstanding"]
        return await self.page(
            request,
            session,
            "access.html",
            people=people,
            outstanding=outstanding,
            access_team=await self._access_team(session),
            names=self.names(session),
        )

    async def _p30_form(
        self, request: Request, session: Session, template: str, **ctx: Any
    ) -> Response:
        unit = await self._primary_unit(session)
        return await self.page(
            request,
            session,
            template,
            people=views.managed_people(self.catalogue, unit, session.user_id),
            managers=views.managers(self.catalogue, session.user_id),
            chosen=request.query_params.get("user_id", ""),
            max_positions=views.MAX_POSITIONS,
            names=self.names(session),
            **ctx,
        )

    async def absence_form(self, request: Request) -> Response:
        """AC06-AC10: several absence-related positions on one P30, up to ten in all."""
        session = await self.session(request)
        return await self._p30_form(
            request, session, "p30_absence.html", units=views.absence_targets(self.catalogue)
        )

    async def hierarchical_form(self, request: Request) -> Response:
        """AC12-AC14: one position at a time, only into the four segments; functionally unique
        ones warned."""
        session = await self.session(request)
        return await self._p30_form(
            request,
            session,
            "p30_hierarchical.html",
            targets=views.hierarchical_targets(self.catalogue),
        )

    async def emergency_form(self, request: Request) -> Response:
        """AC11, AC21: the business-critical emergency request."""
        session = await self.session(request)
        return await self._p30_form(
            request, session, "emergency.html", units=views.absence_targets(self.catalogue)
        )

    async def _access_command(
        self,
        session: Session,
        form: dict[str, str],
        command_type: str,
        body: dict[str, Any],
        back: str,
    ) -> Response:
        status, answer = await self.send(session, command_type, body, form.get("form_id", ""))
        session.flash = views.outcome(status, answer, self.names(session)).to_json()
        return RedirectResponse(back, status_code=303)

    async def request_absence(self, request: Request) -> Response:
        session, form = await self.form(request)
        body = views.absence_command(form)
        refused = views.too_many_positions(body["unit_ids"])
        if refused is not None:  # AC10: refused before anything is sent
            session.flash = refused.to_json()
            return RedirectResponse(
                f"/access/p30/absence?user_id={_q(body['user_id'])}", status_code=303
            )
        return await self._access_command(
            session,
            form,
            "access.request_absence_access.v1",
            body,
            f"/access/people/{_q(body['user_id'])}",
        )

    async def request_hierarchical(self, request: Request) -> Response:
        session, form = await self.form(request)
        body = views.hierarchical_command(form)
        return await self._access_command(
            session,
            form,
            "access.request_hierarchical_access.v1",
            body,
            f"/access/people/{_q(body['user_id'])}",
        )

    async def request_emergency(self, request: Request) -> Response:
        session, form = await self.form(request)
        body = views.emergency_command(form)
        return await self._access_command(
            session,
            form,
            "access.request_emergency_absence_access.v1",
            body,
            f"/access/people/{_q(body['user_id'])}",
        )

    async def access_person(self, request: Request) -> Response:
        """A person's access: positions and the records backing each, with Remove; their P30s;
        removals with the saga's progress (AC16); Lodge the P30 of an emergency grant (AC11)."""
        session = await self.session(request)
        user_id = request.path_params["user_id"]
        path = f"/users/{_q(user_id)}"
        positions = await self.read(session, "access", f"{path}/positions")
        p30s = (await self.read(session, "access", f"{path}/p30s"))["p30s"]
        removals = (await self.read(session, "access", f"{path}/removals"))["removals"]
        for r in removals:
            r["progress"] = views.removal_progress(r)
            r["unit_id"] = views.position_unit(str(r.get("position_id", "")))
        return await self.page(
            request,
            session,
            "access_person.html",
            person_id=user_id,
            person_name=self.catalogue.person_name(user_id),
            held=positions,
            p30s=list(reversed(p30s)),
            removals=list(reversed(removals)),
            managers=views.managers(self.catalogue, session.user_id),
            names=self.names(session),
        )

    async def request_removal(self, request: Request) -> Response:
        """AC08, AC15, AC16: the removal; its work goes back to the hopper before the access."""
        session, form = await self.form(request)
        body = views.removal_command(form)
        return await self._access_command(
            session,
            form,
            "access.request_access_removal.v1",
            body,
            f"/access/people/{_q(body['user_id'])}",
        )

    async def lodge_p30(self, request: Request) -> Response:
        """AC11: the completed P30 that closes an emergency grant's outstanding record."""
        session, form = await self.form(request)
        user_id = form.get("user_id", "")
        body: dict[str, Any] = {
            "user_id": user_id,
            "p30_id": form.get("p30_id", ""),
            "reason": form.get("reason", "").strip(),
            "discussion_held": form.get("discussion_held") == "yes",
            "discussed_with": form.get("discussed_with") or None,
        }
        return await self._access_command(
            session, form, "access.lodge_p30.v1", body, f"/access/people/{_q(user_id)}"
        )

    async def reviews(self, request: Request) -> Response:
        """AC09: the reviews due by a date (today unless chosen), each with Confirm or Remove."""
        session = await self.session(request)
        by = views.due_by(request.query_params, datetime.now(UTC).date())
        due = await self.read(session, "access", "/reviews/due", at=f"{by.isoformat()}T23:59:59")
        for r in due["reviews"]:
            r["unit_id"] = views.position_unit(str(r.get("position_id", "")))
        return await self.page(
            request,
            session,
            "reviews.html",
            reviews=due["reviews"],
            by=by,
            names=self.names(session),
        )

    async def unanswered_reviews(self, request: Request) -> Response:
        """AC22, AC09: the reviews past their due date that nobody has answered (still active:
        neither confirmed, which moves the date on, nor removed), as at a date (today unless
        chosen), each with Confirm or Remove; those the access service has escalated marked."""
        session = await self.session(request)
        at = views.due_by(request.query_params, datetime.now(UTC).date())
        moment = (
            datetime.now(UTC)
            if at == datetime.now(UTC).date()
            else datetime(at.year, at.month, at.day, 23, 59, 59, tzinfo=UTC)
        )
        due = await self.read(session, "access", "/reviews/due", at=moment.isoformat())
        late = views.unanswered(due["reviews"])
        # Removed at review: a removal P30 is open for the record (the access team actions it,
        # then the AC16 saga ends it); answered, so listed apart. The reader may read each
        # user's P30s as they may their reviews (TR05).
        p30s: list[dict[str, Any]] = []
        for user_id in sorted({str(r["user_id"]) for r in late}):
            p30s += (await self.read(session, "access", f"/users/{_q(user_id)}/p30s"))["p30s"]
        removing = views.removals_open(p30s)
        reviews = [r for r in late if str(r.get("grant_id")) not in removing]
        being_removed = [r for r in late if str(r.get("grant_id")) in removing]
        for r in late:
            r["unit_id"] = views.position_unit(str(r.get("position_id", "")))
            r["days_overdue"] = views.days_overdue(str(r.get("review_due_at") or ""), moment)
        return await self.page(
            request,
            session,
            "reviews.html",
            reviews=reviews,
            being_removed=being_removed,
            by=at,
            unanswered=True,
            names=self.names(session),
        )

    async def review(self, request: Request) -> Response:
        session, form = await self.form(request)
        body = {
            "user_id": form.get("user_id", ""),
            "grant_id": form.get("grant_id", ""),
            "confirm": form.get("decision") == "confirm",
            "reason": form.get("reason", "").strip(),
        }
        page = (
            "/access/reviews/unanswered" if form.get("view") == "unanswered" else "/access/reviews"
        )
        back = page + (f"?{urllib.parse.urlencode({'by': form['by']})}" if form.get("by") else "")
        return await self._access_command(
            session, form, "access.review_absence_access.v1", body, back
        )

    async def to_action(self, request: Request) -> Response:
        """AC20, AC21: the access team's queue: action or refuse a P30; grant an emergency
        request at once or answer with a time."""
        session = await self.session(request)
        queue = (await self.read(session, "access", "/p30s/to-action"))["p30s"]
        return await self.page(
            request, session, "to_action.html", p30s=queue, names=self.names(session)
        )

    async def action_p30(self, request: Request) -> Response:
        session, form = await self.form(request)
        command_type, body = views.access_team_command(form)
        return await self._access_command(session, form, command_type, body, "/access/to-action")

    async def send_to_hopper(self, request: Request) -> Response:
        """AC19: a case moving to another team goes back to the segment hopper first."""
        session, form = await self.form(request)
        body = {
            "person_id": form.get("person_id", ""),
            "work_item_id": form.get("work_item_id", ""),
            "note": form.get("note", "").strip(),
        }
        status, answer = await self.send(
            session, "allocation.send_to_segment_hopper.v1", body, form.get("form_id", "")
        )
        session.flash = views.outcome(status, answer, self.names(session)).to_json()
        return RedirectResponse("/work-management", status_code=303)

    # --- the application ------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        await self.session(request)
        return RedirectResponse("/teams", status_code=303)

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "up", "service": self.settings.service_name})

    async def readyz(self, _: Request) -> Response:
        """Ready once the identity provider answers: no one can sign in before."""
        ready = False
        with contextlib.suppress(httpx.HTTPError, ValueError):
            await self.signin.config()
            ready = True
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        await self.sessions.aclose()
        await self.signin.aclose()
        await self.signin.verifier.aclose()

    def asgi(self, *, manage_lifecycle: bool = True) -> Starlette:
        async def needs_sign_in(request: Request, _: Exception) -> Response:
            if request.method == "GET":
                target = urllib.parse.quote(request.url.path, safe="/")
                return RedirectResponse(f"/sign-in?next={target}", status_code=303)
            return self.plain("Sign in", "Your session has ended: sign in again.", 401, True)

        async def csrf_refused(_: Request, __: Exception) -> Response:
            return self.plain("Not sent", "The form had expired: go back and try again.", 403)

        async def read_refused(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ReadRefused)
            rule = exc.body.get("rule")
            reason = str(exc.body.get("error") or exc.body.get("reason") or "not allowed")
            title = f"You cannot see this: rule {rule}" if rule else "You cannot see this"
            try:
                session = await self.session(request)
            except SignInNeeded:
                return self.plain(title, reason, exc.status)
            return await self.page(
                request, session, "refused.html", exc.status, title=title, reason=reason
            )

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                if manage_lifecycle:
                    await self.aclose()

        return Starlette(
            routes=[
                Route("/", self.home),
                Route("/sign-in", self.sign_in),
                Route("/signed-in", self.signed_in),
                Route("/sign-out", self.sign_out, methods=["POST"]),
                Route("/signed-out", self.signed_out),
                Route("/position", self.change_position, methods=["POST"]),
                Route("/inbox/unread", self.unread),
                Route("/teams", self.teams),
                Route("/teams/{team}", self.team),
                Route("/work-items/{work_item_id}/assign", self.assign_form),
                Route("/work-items/{work_item_id}/assign", self.assign, methods=["POST"]),
                Route("/persons/{person_id}", self.person),
                Route("/persons/{person_id}/resume", self.resume_step, methods=["POST"]),
                Route("/persons/{person_id}/relationships/add", self.relationship_form),
                Route(
                    "/persons/{person_id}/relationships/add",
                    self.add_relationship,
                    methods=["POST"],
                ),
                Route("/sign-off/teams/{team}", self.signoff_requests),
                Route("/steps/{step_id}", self.step_summary),
                Route("/steps/{step_id}/decision", self.decide, methods=["POST"]),
                Route("/steps/{step_id}/finish", self.finish, methods=["POST"]),
                Route("/my-work", self.my_work),
                Route("/queues/{kind}/{owner_id}", self.queue_work),
                Route("/work/{work_item_id}", self.work_step),
                Route("/work/{work_item_id}/start", self.start_step, methods=["POST"]),
                Route("/work/{work_item_id}/save", self.save_step, methods=["POST"]),
                Route("/work/{work_item_id}/next-actions", self.add_next_action, methods=["POST"]),
                Route(
                    "/work/{work_item_id}/next-actions/remove",
                    self.remove_next_action,
                    methods=["POST"],
                ),
                Route("/work/{work_item_id}/request", self.send_request, methods=["POST"]),
                Route("/work/{work_item_id}/finish", self.finish_work_step, methods=["POST"]),
                Route("/access", self.access_home),
                Route("/access/p30/absence", self.absence_form),
                Route("/access/p30/absence", self.request_absence, methods=["POST"]),
                Route("/access/p30/hierarchical", self.hierarchical_form),
                Route("/access/p30/hierarchical", self.request_hierarchical, methods=["POST"]),
                Route("/access/emergency", self.emergency_form),
                Route("/access/emergency", self.request_emergency, methods=["POST"]),
                Route("/access/people/{user_id}", self.access_person),
                Route("/access/removal", self.request_removal, methods=["POST"]),
                Route("/access/lodge", self.lodge_p30, methods=["POST"]),
                Route("/access/reviews", self.reviews),
                Route("/access/reviews", self.review, methods=["POST"]),
                Route("/access/reviews/unanswered", self.unanswered_reviews),
                Route("/access/to-action", self.to_action),
                Route("/access/to-action", self.action_p30, methods=["POST"]),
                Route("/work-management/hopper", self.send_to_hopper, methods=["POST"]),
                Route("/my-service-requests", self.my_service_requests),
                Route("/segment-list", self.segment_list),
                Route("/work-management", self.work_management),
                Route("/work-management/assign", self.assign_from_hopper, methods=["POST"]),
                Route("/bulk-assign", self.bulk_form),
                Route("/bulk-assign", self.bulk, methods=["POST"]),
                Route("/healthz", self.healthz),
                Route("/livez", self.healthz),
                Route("/readyz", self.readyz),
                Mount(
                    "/assets",
                    StaticFiles(
                        directory=NODE / "govuk-frontend/dist/govuk/assets", check_dir=False
                    ),
                ),
                Mount(
                    "/static/govuk",
                    StaticFiles(directory=NODE / "govuk-frontend/dist/govuk", check_dir=False),
                ),
                Mount(
                    "/static/moj",
                    StaticFiles(
                        directory=NODE / "@ministryofjustice/frontend/moj", check_dir=False
                    ),
                ),
                Mount("/static/web", StaticFiles(directory=HERE / "static", check_dir=False)),
            ],
            exception_handlers={
                SignInNeeded: needs_sign_in,
                CsrfRefused: csrf_refused,
                ReadRefused: read_refused,
            },
            middleware=[Middleware(SavingSessions, web=self)],
            lifespan=lifespan,
        )


class SavingSessions:
    """Saves the request's session, if it changed, before the answer starts: the browser's next
    request may reach another instance of the web."""

    def __init__(self, app: ASGIApp, web: Web) -> None:
        self.app, self.web = app, web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def saving(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope.pop(SESSION_SCOPE, None)
                if isinstance(session, Session):
                    await self.web.sessions.save(session)
            await send(message)

        await self.app(scope, receive, saving)


def database_configured(settings: Settings) -> bool:
    """A database was given (CASEWORK_DATABASE_URL, or the settings' own argument), not only
    the settings' default."""
    return "database_url" in settings.model_fields_set


async def migrate(settings: Settings) -> None:
    """The web's own migrations only (`services/web/migrations`; no outbox, no inbox)."""
    config = db.alembic_config(settings)
    config.set_main_option("version_locations", str(MIGRATIONS))
    await asyncio.to_thread(command.upgrade, config, "heads")


class CsrfRefused(Exception):
    pass


def _paging(request: Request) -> dict[str, str]:
    """The read API's `?limit=&offset=` for the pages the tables are on (allocation cuts them)."""
    params = {"limit": str(views.PAGE_SIZE)}
    for param in ("incoming", "incomplete"):
        number = views.page_number(request.query_params.get(param))
        params[f"{param}_offset"] = str((number - 1) * views.PAGE_SIZE)
    return params


def _pages(work: dict[str, Any], request: Request) -> dict[str, Any]:
    """The incoming and incomplete work tables, a page of each (`?incoming=N&incomplete=M`):
    the page the read API answered, numbered against its section's total."""
    totals = work.get("totals")
    pages = {}
    for param in ("incoming", "incomplete"):
        rows = work.get(f"{param}_work", [])
        requested = request.query_params.get(param)
        pages[param] = (
            views.served_page(rows, requested, int(totals[f"{param}_work"]), param)
            if totals is not None and "limit" in work
            else views.paginate(rows, requested, param)
        )
    return pages


def _back(path: str | None) -> str:
    """Only a path of this service (no open redirect)."""
    return path if path and path.startswith("/") and not path.startswith("//") else "/teams"


async def _form_fields(request: Request) -> dict[str, str]:
    """A posted url-encoded form (the pages' only kind), bounded in size."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise CsrfRefused
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise CsrfRefused
    return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {"error": answer.text[:500]}
    return body if isinstance(body, dict) else {"error": str(body)[:500]}
