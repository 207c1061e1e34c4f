"""The operator CLI: `casework --help`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from deploy.stack import Stack

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Run and drive the casework platform."
)
console = Console()


def _status_table(stack: Stack) -> Table:
    table = Table(title="casework services")
    for column in ("service", "pid", "url", "ready"):
        table.add_column(column)
    for name, service in stack.services.items():
        state = "exited" if service.process.poll() is not None else "starting"
        try:
            response = httpx.get(f"{service.url}/readyz", timeout=0.5)
            state = "ready" if response.status_code == 200 else f"not ready {response.json()}"
        except httpx.HTTPError:
            pass
        colour = "green" if state == "ready" else "yellow"
        table.add_row(name, str(service.process.pid), service.url, f"[{colour}]{state}[/]")
    return table


@app.command()
def up(
    state_dir: Path = typer.Option(
        Path(".casework"), help="Where the embedded stack keeps its data."
    ),
) -> None:
    """Start the embedded stack (PostgreSQL, Kafka-protocol broker, the four services) and show
    their status until Ctrl-C."""
    stack = Stack(state_dir=state_dir)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        env = stack.start_infrastructure()
        console.print(f"broker [bold]{env['CASEWORK_KAFKA_BOOTSTRAP_SERVERS']}[/]")
        stack.start_services(log_dir=state_dir / "logs")
        with Live(_status_table(stack), console=console, refresh_per_second=1) as live:
            while not stopping:
                time.sleep(1)
                live.update(_status_table(stack))
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        stack.stop()


@app.command()
def docs(output: Path = typer.Option(Path("docs/generated"), help="Output directory.")) -> None:
    """Write the AsyncAPI document and one JSON Schema per message type."""
    from contracts.schemas import write

    files = write(output)
    console.print(f"wrote {len(files)} files to {output}")


if __name__ == "__main__":
    app()
