"""How a service (or the edge) authenticates to the broker as itself (TR04): SASL/SCRAM with
its own credentials from its settings, or nothing on the embedded broker (which cannot check
SCRAM credentials: see deploy/broker_auth.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCRAM_MECHANISMS = {"SCRAM-SHA-512": "scram512", "SCRAM-SHA-256": "scram256"}
DEFAULT_MECHANISM = "SCRAM-SHA-512"
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_PROTOCOL = "SASL_PLAINTEXT"


@dataclass(frozen=True)
class BrokerCredentials:
    """One principal's broker credentials. The password never appears in `repr`."""

    username: str
    password: str = field(repr=False)
    mechanism: str = DEFAULT_MECHANISM
    security_protocol: str = DEFAULT_PROTOCOL

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise ValueError("broker credentials need a username and a password")
        if self.mechanism not in SCRAM_MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {self.mechanism!r}")
        if self.security_protocol not in SASL_PROTOCOLS:
            raise ValueError(
                f"SCRAM needs SASL_PLAINTEXT or SASL_SSL, not {self.security_protocol}"
            )

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient.
        (For SASL_SSL add `ssl_context=aiokafka.helpers.create_ssl_context(...)`.)"""
        return {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }

    def faststream_security(self) -> Any:
        """The `security=` argument of FastStream's KafkaBroker."""
        from faststream.security import SASLScram256, SASLScram512

        cls = SASLScram512 if self.mechanism == "SCRAM-SHA-512" else SASLScram256
        return cls(self.username, self.password, use_ssl=self.security_protocol == "SASL_SSL")

    @property
    def tansu_mechanism(self) -> str:
        return SCRAM_MECHANISMS[self.mechanism]


def _secret(value: Any) -> str:
    """A plain string, or the value of a pydantic SecretStr."""
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value or "")


def credentials_from_settings(settings: Any) -> BrokerCredentials | None:
    """The service's broker credentials from its Settings, or None when it connects without
    SASL (`kafka_security_protocol` PLAINTEXT or unset, as with the embedded broker)."""
    protocol = str(getattr(settings, "kafka_security_protocol", "") or "PLAINTEXT").upper()
    if protocol in ("PLAINTEXT", "SSL"):
        return None
    return BrokerCredentials(
        username=str(getattr(settings, "kafka_sasl_username", "") or ""),
        password=_secret(getattr(settings, "kafka_sasl_password", "")),
        mechanism=str(getattr(settings, "kafka_sasl_mechanism", "") or DEFAULT_MECHANISM),
        security_protocol=protocol,
    )


def kafka_client_kwargs(settings: Any) -> dict[str, Any]:
    """Extra aiokafka keyword arguments for a service: {} without SASL."""
    credentials = credentials_from_settings(settings)
    return credentials.aiokafka_kwargs() if credentials else {}


def faststream_security(settings: Any) -> Any:
    """The `security=` argument for FastStream's KafkaBroker, or None without SASL."""
    credentials = credentials_from_settings(settings)
    return credentials.faststream_security() if credentials else None
