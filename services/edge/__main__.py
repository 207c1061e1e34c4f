"""`python -m services.edge`: the command API on CASEWORK_HTTP_HOST:CASEWORK_HTTP_PORT."""

import uvicorn

from services.edge.app import Edge
from services.shared import logs
from services.shared.settings import Settings

if __name__ == "__main__":
    settings = Settings(service_name="edge")
    logs.configure(settings.log_level, settings.log_json)
    uvicorn.run(
        Edge(settings).asgi(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )
