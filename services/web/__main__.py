"""`python -m services.web`: the web pages on CASEWORK_HTTP_HOST:CASEWORK_HTTP_PORT."""

import uvicorn

from services.shared import logs
from services.shared.settings import Settings
from services.web.app import Web
from services.web.settings import WebSettings

if __name__ == "__main__":
    settings = Settings(service_name="web")
    logs.configure(settings.log_level, settings.log_json)
    uvicorn.run(
        Web(settings, WebSettings()).asgi(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )
