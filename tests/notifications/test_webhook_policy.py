"""TR06 without I/O: the webhook allow-list, the address check, who may register, remove and
replay, and the signature a receiver verifies (timestamp and body)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from services.notifications import domain
from services.notifications.channels import REPLAY_WINDOW_SECONDS, sign, verify_signature
from services.notifications.domain import WebhookPolicy
from services.shared.rules import RuleViolation

POLICY = WebhookPolicy.parse(
    [
        "https://hooks.example.org/casework/",
        "partner.example.net",
        "*.corp.example:8443",
        "http://127.0.0.1:8080/",
    ],
    ["127.0.0.1/32", "10.20.0.0/16"],
)


def _reason(url: str) -> str:
    with pytest.raises(RuleViolation) as refused:
        POLICY.check_url(url)
    assert refused.value.rule == "TR06"
    return refused.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/casework/",
        "https://hooks.example.org/casework/in?x=1",
        "https://HOOKS.example.org./casework/deep/er",
        "https://partner.example.net/anything",
        "https://a.corp.example:8443/x",
        "http://127.0.0.1:8080/hook/a",
    ],
)
def test_tr06_allowed_targets(url: str) -> None:
    assert POLICY.check_url(url).scheme in {"http", "https"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://hooks.example.org/casework-evil/", "not allowed by configuration"),
        ("https://hooks.example.org/other/", "not allowed by configuration"),
        ("https://hooks.example.org.evil.example/casework/", "not allowed by configuration"),
        ("http://hooks.example.org/casework/", "not allowed by configuration"),  # not https
        ("https://hooks.example.org:444/casework/", "not allowed by configuration"),
        ("http://partner.example.net/", "not allowed by configuration"),
        ("https://partner.example.net:8443/", "not allowed by configuration"),
        ("https://corp.example:8443/", "not allowed by configuration"),  # `*.` is subdomains
        ("https://a.corp.example/", "not allowed by configuration"),  # port 443, not 8443
        ("http://127.0.0.1:8081/", "not allowed by configuration"),
        ("http://localhost:5432/", "not allowed by configuration"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
        ("http://10.0.0.1/", "private address"),
        ("http://[::1]:8080/", "loopback address"),
        ("http://[::ffff:169.254.169.254]/", "link-local address"),
        ("http://0.0.0.0:8080/", "unspecified address"),
        ("https://hooks.example.org/casework/../admin", "'.' or '..' segments"),
        ("https://hooks.example.org/casework/%2e%2e/admin", "'.' or '..' segments"),
        ("https://user:pw@hooks.example.org/casework/", "credentials"),
        ("https://hooks.example.org@evil.example/casework/", "credentials"),
        ("ftp://hooks.example.org/casework/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("https://hooks.example.org/case work/", "whitespace or control characters"),
        ("https:///casework/", "no host"),
    ],
)
def test_tr06_refused_targets_say_why(url: str, why: str) -> None:
    reason = _reason(url)
    assert why in reason
    assert "pw" not in reason  # a reason names the origin, never credentials or the path


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("fd00::1", "private"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-global"),
        ("::ffff:127.0.0.2", "loopback"),
    ],
)
def test_tr06_non_public_addresses_are_refused_unless_allowed(address: str, kind: str) -> None:
    refusal = POLICY.address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and kind in refusal


@pytest.mark.parametrize("address", ["127.0.0.1", "10.20.3.4", "::ffff:10.20.0.9", "93.184.215.14"])
def test_tr06_public_and_explicitly_allowed_addresses_pass(address: str) -> None:
    assert POLICY.address_refusal(ipaddress.ip_address(address)) is None


def test_tr06_nothing_is_allowed_by_default() -> None:
    with pytest.raises(RuleViolation, match="not allowed by configuration"):
        WebhookPolicy().check_url("https://hooks.example.org/")


@pytest.mark.parametrize(
    "entry", ["ftp://x.example/", "https://x.example/?q=1", "x.example/path", "a.*.example", ""]
)
def test_tr06_a_malformed_allow_list_entry_stops_the_service(entry: str) -> None:
    with pytest.raises(ValueError, match="CASEWORK_WEBHOOK_ALLOWED_TARGETS"):
        WebhookPolicy.parse([entry], [])
    with pytest.raises(ValueError, match="CASEWORK_WEBHOOK_ALLOWED_ADDRESSES"):
        WebhookPolicy.parse([], ["10.0.0.0/33"])


def test_tr06_the_checked_address_is_where_the_request_goes_with_the_urls_host() -> None:
    target = POLICY.check_url("https://partner.example.net/in?x=1")
    address = ipaddress.ip_address("93.184.215.14")
    assert target.url_at(address) == "https://93.184.215.14:443/in?x=1"
    assert target.host_header == "partner.example.net"
    v6 = ipaddress.ip_address("2606:2800:220:1::1")
    assert target.url_at(v6) == "https://[2606:2800:220:1::1]:443/in?x=1"


def test_tr06_only_an_integration_admin_and_only_the_owner() -> None:
    with pytest.raises(RuleViolation, match="integration-admin") as refused:
        domain.require_integration_admin({"operator"}, "registering a webhook")
    assert refused.value.rule == "TR06"
    domain.require_integration_admin({"integration-admin"}, "registering a webhook")
    domain.check_webhook_owner("admin-1", "hook", None)  # new id (or older than owners)
    domain.check_webhook_owner("admin-1", "hook", "admin-1")
    with pytest.raises(RuleViolation, match="belongs to another"):
        domain.check_webhook_owner("admin-2", "hook", "admin-1")


def test_tr06_signature_covers_timestamp_and_body_within_the_replay_window() -> None:
    secret, body, now = "s" * 32, b'{"kind": "work_landed"}', time.time()
    stamp = str(int(now))
    signature = sign(secret, stamp, body)
    verify_signature(secret, stamp, signature, body, now=now)
    verify_signature(secret, stamp, f"v1=00, {signature}", body, now=now)  # rotation
    for bad_stamp, bad_signature, bad_body, why in [
        (stamp, signature, body + b" ", "does not match"),
        (str(int(now) + 1), signature, body, "does not match"),  # the timestamp is signed
        (stamp, sign("another secret entirely", stamp, body), body, "does not match"),
        (None, signature, body, "Casework-Timestamp"),
        ("12ab", signature, body, "Casework-Timestamp"),
    ]:
        with pytest.raises(ValueError, match=why):
            verify_signature(secret, bad_stamp, bad_signature, bad_body, now=now)
    old = str(int(now) - REPLAY_WINDOW_SECONDS - 1)  # a captured request, replayed later
    with pytest.raises(ValueError, match="seconds away"):
        verify_signature(secret, old, sign(secret, old, body), body, now=now)
