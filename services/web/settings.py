"""The web service's own settings (prefix CASEWORK_WEB_): where it is reached from a browser and
where the edge and the services' read APIs are. Sign-in (issuer, client id) comes from the shared
settings (CASEWORK_OIDC_ISSUER, CASEWORK_OIDC_AUDIENCE); the sessions are kept in the database
of CASEWORK_DATABASE_URL when it is set, in the process's memory when not (sessions.py)."""

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_WEB_", extra="ignore")

    public_url: str = "http://127.0.0.1:8080"  # the browser's address of this service
    edge_url: str = "http://127.0.0.1:8000"
    allocation_url: str = "http://127.0.0.1:8001"
    signoff_url: str = "http://127.0.0.1:8002"
    access_url: str = "http://127.0.0.1:8003"
    notifications_url: str = "http://127.0.0.1:8004"
    # The development provider takes any secret; a real one is given the client's own.
    client_secret: str = "development"
    session_idle_seconds: float = 8 * 3600.0
    # Fernet key(s) sealing the sessions kept in PostgreSQL (comma-separated: the first seals,
    # any opens); needed once CASEWORK_DATABASE_URL is set (sessions.py).
    session_key: SecretStr = SecretStr("")
    unread_poll_seconds: float = 15.0  # how often the header asks for the unread count
    # The directory document (as loaded by its administrator) whose teams, segments and people
    # the forms offer as choices; empty: the walkthrough directory shipped with the service.
    directory_file: str = ""
