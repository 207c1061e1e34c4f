"""`python -m deploy` is the `casework` CLI."""

from deploy.cli import app

app()
