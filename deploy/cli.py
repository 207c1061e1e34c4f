"""The operator CLI: `casework --help`."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.json import JSON
from rich.live import Live
from rich.table import Table

from contracts import Actor, Envelope
from contracts.access import DirectoryLoaded, LoadDirectory
from deploy.client import (
    Bus,
    ClientError,
    EdgeClient,
    ReadApi,
    Received,
    StoredUsers,
    Target,
    build_command,
    command_types,
    development_sign_in,
    event_topics,
    find_command,
    parse_fields,
    rejection,
    remove_stack_file,
    write_stack_file,
)
from deploy.stack import DEV_ROLE_HOLDERS, EDGE, WEB, Stack

app = typer.Typer(
    no_args_is_help=True, add_completion=True, help="Run and drive the casework platform."
)
directory_app = typer.Typer(no_args_is_help=True, help="The directory of teams, users, positions.")
events_app = typer.Typer(no_args_is_help=True, help="Follow the event topics.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit journal of P30s and removals.")
app.add_typer(directory_app, name="directory")
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
STATE: dict[str, Any] = {"dir": Path(os.environ.get("CASEWORK_STATE_DIR", ".casework"))}
POSITIONS_PATH = "/me/positions"  # TR05: who asks comes from the token
INBOX_PATH = "/me/inbox"


def version() -> str:
    try:
        return importlib.metadata.version("casework")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"casework {version()}")
        raise typer.Exit()


def json_option() -> Any:
    """`--json` of a read command: the service's answer as JSON on stdout, for scripts."""
    return typer.Option(False, "--json", help="Print JSON (machine-readable) instead of tables.")


def print_json(value: Any) -> None:
    # Plain stdout, not Rich: no markup, colour or wrapping may touch machine-readable output.
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


@app.callback()
def main(
    state_dir: Path = typer.Option(
        Path(os.environ.get("CASEWORK_STATE_DIR", ".casework")),
        help="Where the embedded stack keeps its data and `stack.json` (env CASEWORK_STATE_DIR).",
    ),
    show_version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    STATE["dir"] = state_dir
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # failures are reported as errors


def friendly(func: F) -> F:
    """Operator mistakes and an unreachable stack are a message and an exit code, not a
    traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClientError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(exc.code) from None
        except KafkaError as exc:  # the broker went away mid-command
            err.print(f"[red]error:[/] the broker failed: {type(exc).__name__}: {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


# --- up, docs -------------------------------------------------------------------------------


def _status_table(stack: Stack) -> Table:
    table = Table(title="casework services")
    for column in ("service", "pid", "url", "ready", "restarts"):
        table.add_column(column)
    for name, service in stack.services.items():
        state = "exited" if service.process.poll() is not None else "starting"
        try:
            response = httpx.get(f"{service.url}/readyz", timeout=0.5)
            state = "ready" if response.status_code == 200 else f"not ready {response.json()}"
        except httpx.HTTPError:
            pass
        colour = "green" if state == "ready" else "yellow"
        table.add_row(
            name,
            str(service.process.pid),
            service.url,
            f"[{colour}]{state}[/]",
            str(service.restarts),
        )
    return table


def _print_web(stack: Stack) -> None:
    """The web address and whom to sign in as on the development provider's page."""
    web = stack.services.get(WEB)
    if web is None:
        console.print("web not started: install its assets with `npm ci --prefix services/web`")
        return
    console.print(f"web [bold]{web.url}[/] (sign in by typing a user id on the provider's page)")
    holders = ", ".join(str(u["sub"]) for u in DEV_ROLE_HOLDERS)
    console.print(
        f"development users: {holders}; once the walkthrough directory is loaded (`casework "
        "directory load services/access/walkthrough_directory.json`), its people: so-hub, "
        "so-north, so-south, so-mgmt, hub-1, hub-2, ta-north-1, tl-enf-1, cw-enf-1, ..."
    )


@app.command()
def up(
    state_dir: Path | None = typer.Option(
        None, help="Where the embedded stack keeps its data (default: the global --state-dir)."
    ),
) -> None:
    """Start the embedded stack and show the services' status until Ctrl-C.

    PostgreSQL, the Kafka-protocol broker and the four services; their addresses are recorded
    in <state dir>/stack.json for the other commands. A service process that dies is started
    again (after 1 s, doubling to 30 s while it keeps dying); the table counts restarts."""
    state_dir = state_dir or STATE["dir"]
    stack = Stack(state_dir=state_dir)
    stopping = False
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = state_dir / UP_PID_FILE  # how `casework down` finds this process
    pid_file.write_text(str(os.getpid()))

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        env = stack.start_infrastructure()
        console.print(f"broker [bold]{env['CASEWORK_KAFKA_BOOTSTRAP_SERVERS']}[/]")
        stack.start_services(log_dir=state_dir / "logs")
        stack.supervise()  # a service that dies is started again, with backoff
        console.print(f"recorded in [bold]{write_stack_file(stack, state_dir)}[/]")
        _print_web(stack)
        with Live(_status_table(stack), console=console, refresh_per_second=1) as live:
            while not stopping:
                time.sleep(1)
                live.update(_status_table(stack))
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        remove_stack_file(state_dir)
        stack.stop()
        pid_file.unlink(missing_ok=True)


UP_PID_FILE = "up.pid"


@app.command()
def down(
    state_dir: Path | None = typer.Option(
        None, help="The state dir of the stack to stop (default: the global --state-dir)."
    ),
    timeout: float = typer.Option(60.0, help="Longest wait for everything to have stopped."),
) -> None:
    """Stop the stack `casework up` runs: its supervisor first (nothing is restarted), then
    every service, the broker, PostgreSQL and the identity provider."""
    pid_file = (state_dir or STATE["dir"]) / UP_PID_FILE
    if not pid_file.exists():
        console.print("no stack is running here")
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)  # left by an `up` that was killed
        console.print("no stack is running here")
        return
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:  # `up` removes it when all stopped
        time.sleep(0.2)
    if pid_file.exists():
        console.print(f"[red]the stack (process {pid}) has not stopped after {timeout:.0f} s[/]")
        raise typer.Exit(1)
    console.print("stopped")


@app.command()
def docs(output: Path = typer.Option(Path("docs/generated"), help="Output directory.")) -> None:
    """Write the AsyncAPI document and one JSON Schema per message type."""
    from contracts.schemas import write

    files = write(output)
    console.print(f"wrote {len(files)} files to {output}")


# --- commands -------------------------------------------------------------------------------


@app.command("commands")
def list_commands(as_json: bool = json_option()) -> None:
    """List every command type `casework send` accepts, with its fields."""
    if as_json:
        print_json(
            [
                {
                    "command": name,
                    "fields": [
                        {"name": n, "required": f.is_required()}
                        for n, f in model.model_fields.items()
                    ],
                }
                for name, model in command_types().items()
            ]
        )
        return
    table = Table(title="commands")
    table.add_column("command")
    table.add_column("fields (* required)")
    for name, model in command_types().items():
        fields = [f"{n}{'*' if f.is_required() else ''}" for n, f in model.model_fields.items()]
        table.add_row(name, ", ".join(fields))
    console.print(table)


@app.command()
@friendly
def login(
    user: str | None = typer.Argument(
        None, help="On the embedded stack: the development user to sign in as."
    ),
) -> None:
    """Sign in through the identity provider and keep the token for later commands.

    On the embedded stack its development provider lets you choose who you are: give a user id
    (the walkthrough's people, or directory-admin, integration-admin, operator). The token is
    kept in <state dir>/credentials.json, readable by you only."""
    target = Target.resolve(STATE["dir"])
    if not target.development_identity:
        raise ClientError(
            "this stack's identity provider is not the development one: sign in with its own "
            "page and set CASEWORK_OIDC_ISSUER (browser sign-in is not built into this CLI yet)"
        )
    if user is None:
        choices = ", ".join(str(u["sub"]) for u in DEV_ROLE_HOLDERS)
        user = typer.prompt(f"user id (with roles: {choices}; or any directory user)")
    tokens = asyncio.run(development_sign_in(target, user))
    target.credentials().save(tokens)
    console.print(f"[green]signed in[/] as {user}")


def print_events(events: Iterable[Envelope]) -> None:
    for e in events:
        console.print(f"[bold cyan]{e.type}[/]  [dim]{e.message_id}[/]")
        console.print(JSON(json.dumps(e.payload, default=str)))


async def _send(
    target: Target, command: Any, actor: Actor, timeout: float
) -> tuple[Envelope, list[Envelope]]:
    """Through the edge, as the signed-in `actor.user_id` (TR02: the edge signs it)."""
    edge = EdgeClient(target.url(EDGE), StoredUsers(target.credentials()), timeout)
    try:
        return await edge.send(command, actor)
    finally:
        await edge.aclose()


def _actor(target: Target, user: str | None, position: str | None) -> Actor:
    """The actor: the signed-in user (the last one by default) in the named position, else in
    their current position as the access service knows it (when its read API answers)."""
    user = user or target.credentials().current()
    if not user:
        raise ClientError("nobody is signed in: run `casework login`")
    if position is None and "access" in target.service_urls:
        api = ReadApi(target, user, timeout=3)
        try:
            status, body = api.get("access", POSITIONS_PATH)
            if status == 200:
                position = body.get("current_position_id")
        except ClientError:
            pass
        finally:
            api.close()
    return Actor(user_id=user, position_id=position)


def _json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file ('-': stdin)."""
    try:
        loaded = json.loads(sys.stdin.read() if str(path) == "-" else path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ClientError(f"{path} must hold a JSON object of {what}")
    return loaded


def _report(sent: Envelope, events: list[Envelope]) -> None:
    refused = rejection(events)
    if refused is not None:
        err.print(f"[red]rejected[/] {sent.type} by rule [bold]{refused.rule}[/]: {refused.reason}")
        raise typer.Exit(1)
    console.print(f"[green]applied[/] {sent.type} ({len(events)} event(s))")
    print_events(events)


@app.command()
@friendly
def send(
    command: str = typer.Argument(..., help="Command type, e.g. allocation.assign_work(.v1)."),
    field: list[str] = typer.Option([], "--field", "-f", help="name=value (repeatable)."),
    json_file: Path | None = typer.Option(
        None, "--json", help="The command's fields as a JSON object in a file ('-': stdin)."
    ),
    user: str | None = typer.Option(
        os.environ.get("CASEWORK_ACTOR"),
        "--as",
        help="The acting user, signed in with `casework login` (default: the last one).",
    ),
    position: str | None = typer.Option(
        None, help="The acting position (default: the user's current position)."
    ),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the outcome."),
) -> None:
    """Send any command as a signed-in user, through the edge, and print its outcome.

    The outcome is the events the command caused, or its rejection with the rule id and the
    reason (exit code 1). Invalid input exits with code 2 before anything is sent."""
    model = find_command(command)
    values: dict[str, Any] = {}
    if json_file is not None:
        values.update(_json_object(json_file, "the command's fields"))
    values.update(parse_fields(field))
    cmd = build_command(model, values)
    target = Target.resolve(STATE["dir"])
    target.url(EDGE)  # where it goes, before who sends it
    sent, events = asyncio.run(_send(target, cmd, _actor(target, user, position), timeout))
    _report(sent, events)


@directory_app.command("load")
@friendly
def directory_load(
    file: Path = typer.Argument(..., help="JSON: units, users and positions."),
    user: str = typer.Option(
        "directory-admin", "--as", help="A signed-in directory administrator (TR03)."
    ),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the outcome."),
) -> None:
    """Load teams, segments, users and their primary positions (access.load_directory)."""
    cmd = build_command(LoadDirectory, _json_object(file, "units, users and positions"))
    target = Target.resolve(STATE["dir"])
    sent, events = asyncio.run(_send(target, cmd, Actor(user_id=user), timeout))
    loaded = [e for e in events if e.type == DirectoryLoaded.TYPE]
    if loaded and rejection(events) is None:
        counts = loaded[0].payload
        console.print(
            f"[green]loaded[/] {counts['units']} units, {counts['users']} users, "
            f"{counts['positions']} positions"
        )
        return
    _report(sent, events)


# --- read APIs ------------------------------------------------------------------------------


def _read(service: str, path: str, missing: str, **params: Any) -> Any:
    """A read API's answer for the signed-in user (`--as` of the read command, else the last)."""
    target = Target.resolve(STATE["dir"])
    api = ReadApi(target, STATE.get("as") or target.credentials().current())
    try:
        status, body = api.get(service, path, **params)
    finally:
        api.close()
    if status == 404:
        raise ClientError(missing)
    if status != 200:
        raise ClientError(f"{service} answered {status}: {body.get('error', body)}", 1)
    return body


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    if not rows:
        table.add_row(*(["(none)"] + [""] * (len(columns) - 1)))
    return table


WORK_COLUMNS = ["person_name", "person_id", "step_type", "owner_id", "priority", "work_item_id"]


@app.command()
@friendly
def workview(
    team: str = typer.Argument(..., help="The team, e.g. 'Wellbeing Service Hub Team'."),
    user: str | None = typer.Option(None, "--as", help="A signed-in user (default: the last)."),
    as_json: bool = json_option(),
) -> None:
    """A team's current work: incoming work, incomplete work and incoming requests (AL04)."""
    STATE["as"] = user
    teams = _read("allocation", "/teams", "no teams")["teams"]
    known = [t["unit_id"] for t in teams]
    if team not in known:
        raise ClientError(f"unknown team {team!r}; known teams: {', '.join(known)}")
    body = _read("allocation", f"/teams/{team}/work", f"unknown team {team!r}")
    if as_json:
        print_json(body)
        return
    console.print(_table(f"{team}: incoming work", body["incoming_work"], WORK_COLUMNS))
    console.print(_table(f"{team}: incomplete work", body["incomplete_work"], WORK_COLUMNS))
    console.print(
        _table(
            f"{team}: incoming requests",
            body["incoming_requests"],
            ["title", "person_name", "person_id", "state", "request_id"],
        )
    )


@app.command()
@friendly
def person(
    person_id: str = typer.Argument(..., help="The person's id."),
    user: str | None = typer.Option(None, "--as", help="A signed-in user (default: the last)."),
    as_json: bool = json_option(),
) -> None:
    """A person's record: current work, documents, workflow map, history, relationships."""
    STATE["as"] = user
    body = _read("allocation", f"/persons/{person_id}", f"no such person {person_id!r}")
    if as_json:
        print_json(body)
        return
    console.print(f"[bold]{body['person'].get('name', person_id)}[/] ({person_id})")
    console.print(_table("current work", body["current_work"], WORK_COLUMNS))
    console.print(_table("documents (finished steps)", body["documents"], WORK_COLUMNS))
    console.print(_table("workflow map", body["workflow_map"], ["step_type", "status"]))
    history = [{**h, "note": (h.get("detail") or {}).get("note", "")} for h in body["work_history"]]
    console.print(
        _table(
            "work history",
            history,
            ["at", "step_type", "change", "actor_user_id", "from_owner", "to_owner", "note"],
        )
    )
    console.print(
        _table(
            "professional relationships",
            body["professional_relationships"],
            ["worker_name", "relationship_type", "from_date", "end_date"],
        )
    )


@app.command()
@friendly
def positions(
    user: str | None = typer.Option(None, "--as", help="A signed-in user (default: the last)."),
    as_json: bool = json_option(),
) -> None:
    """Your positions: primary and secondary, with the records backing each (P30s)."""
    STATE["as"] = user
    body = _read("access", POSITIONS_PATH, "you are not in the directory")
    if as_json:
        print_json(body)
        return
    user = body.get("user_id", user)
    rows = [body["primary"], *body["secondary"]]
    for row in rows:
        row["current"] = "yes" if row.get("current") else ""
        row["records"] = "; ".join(
            f"{r['kind']} P30 {r['p30_state']}"
            + (f", review due {r['review_due_at']}" if r.get("review_due_at") else "")
            for r in row.get("records", [])
        )
    console.print(
        _table(
            f"positions of {user}",
            rows,
            ["position_id", "unit_id", "role", "kind", "state", "current", "records"],
        )
    )


@app.command()
@friendly
def inbox(
    user: str | None = typer.Option(None, "--as", help="A signed-in user (default: the last)."),
    unread: bool = typer.Option(False, help="Only unread notifications."),
    as_json: bool = json_option(),
) -> None:
    """Your in-app notifications, newest first (TR05: only your own)."""
    STATE["as"] = user
    params = {"unread": "true"} if unread else {}
    body = _read("notifications", INBOX_PATH, "no inbox", **params)
    if as_json:
        print_json(body)
        return
    console.print(_table("your inbox", body["items"], ["created_at", "rule", "subject", "read_at"]))


@audit_app.command("verify")
@friendly
def audit_verify(
    user: str | None = typer.Option(
        None, "--as", help="A signed-in operator (default: the last signed-in user)."
    ),
    as_json: bool = json_option(),
) -> None:
    """Checks the audit journal of P30s, grants and removals: the hash chain unbroken, every
    record equal to its latest entry, every entry written by the access service. Exits 1 on
    any finding."""
    STATE["as"] = user
    body = _read("access", "/audit/verify", "no audit journal")
    if as_json:
        print_json(body)
    elif body["intact"]:
        console.print(f"audit journal intact: {body['entries']} entries verified")
    else:
        for finding in body["findings"]:
            console.print(f"[red]{finding}[/red]")
    if not body["intact"]:
        raise typer.Exit(1)


# --- events tail ----------------------------------------------------------------------------


def _summary(envelope: Envelope) -> str:
    keys = (
        "rule",
        "reason",
        "person_id",
        "user_id",
        "unit_id",
        "position_id",
        "step_type",
        "title",
        "recipient_id",
    )
    parts = [f"{k}={envelope.payload[k]}" for k in keys if envelope.payload.get(k)]
    item = envelope.payload.get("item")
    if isinstance(item, dict):
        parts.append(f"owner={item.get('owner_kind')}:{item.get('owner_id')}")
    return " ".join(parts)


def _when(received: Received) -> datetime:
    """Records of one fetch in the order they happened (they come partition by partition)."""
    return received.envelope.occurred_at if received.envelope else datetime.min.replace(tzinfo=UTC)


def _more(bus: Bus, shown: int) -> bool:
    return len(bus.received) > shown


def _json_line(received: Received) -> str:
    """One record of `events tail --json`: a JSON object on one line (JSON Lines)."""
    if received.envelope is None:
        record: dict[str, Any] = {"topic": received.topic, "unparsable": repr(received.raw[:120])}
    else:
        record = {"topic": received.topic, "envelope": received.envelope.model_dump(mode="json")}
    return json.dumps(record, sort_keys=True)


async def _tail(
    topics: list[str],
    from_beginning: bool,
    limit: int | None,
    idle: float | None,
    as_json: bool = False,
) -> None:
    target = Target.resolve(STATE["dir"])
    bus = Bus(target.broker())
    await bus.start(topics, from_beginning=from_beginning)
    shown = 0
    try:
        while limit is None or shown < limit:
            try:
                await bus.wait_for(functools.partial(_more, bus, shown), idle or 3600.0)
            except TimeoutError:
                if idle is not None:
                    return
                continue
            for r in sorted(bus.received[shown:], key=_when):
                shown += 1
                if as_json:
                    print(_json_line(r), flush=True)
                elif r.envelope is None:
                    console.print(f"[red]{r.topic}[/] unparsable record {r.raw[:120]!r}")
                else:
                    e = r.envelope
                    style = "red" if r.topic.endswith(".dlq") or "rejected" in e.type else "cyan"
                    console.print(
                        f"[dim]{e.occurred_at:%H:%M:%S.%f}[/] [{style}]{e.type}[/] "
                        f"[dim]{r.topic}[/] {_summary(e)}"
                    )
                if limit is not None and shown >= limit:
                    break
    finally:
        await bus.stop()


@events_app.command("tail")
@friendly
def events_tail(
    topic: str | None = typer.Argument(None, help="One topic (default: every event topic)."),
    from_beginning: bool = typer.Option(False, help="Start from the oldest event."),
    limit: int | None = typer.Option(None, help="Stop after this many events."),
    idle: float | None = typer.Option(None, help="Stop after this many seconds without events."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per record and line (JSON Lines)."
    ),
) -> None:
    """Follow the event topics (and the command dead letters), pretty-printed."""
    topics = event_topics()
    if topic is not None and topic not in topics:
        raise ClientError(f"unknown topic {topic!r}; event topics: {', '.join(topics)}")
    asyncio.run(_tail([topic] if topic else topics, from_beginning, limit, idle, as_json))


# --- walkthrough ----------------------------------------------------------------------------


@app.command()
@friendly
def walkthrough(
    state_dir: Path | None = typer.Option(
        None, help="State of its embedded stack (default: <state dir>/walkthrough, fresh)."
    ),
    timeout: float = typer.Option(30.0, help="Seconds to wait for each expected outcome."),
    running: bool = typer.Option(
        False, "--running", help="Use the stack already running (`casework up`, or env URLs)."
    ),
) -> None:
    """Run both seed procedures end to end over Kafka, checking every outcome.

    Starts the embedded stack (with the configured broker and database when the environment
    names them; or `--running`: the stack `casework up` started), loads the walkthrough
    directory and runs each step. Exit code 0 only if every expected outcome was observed."""
    from deploy.walkthrough import run, walk

    if running:
        ok, _ = walk(Target.resolve(STATE["dir"]), console, timeout)
    else:
        ok = run(state_dir or STATE["dir"] / "walkthrough", console, timeout=timeout)
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":
    app()
