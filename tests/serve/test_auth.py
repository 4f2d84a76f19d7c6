"""API keys in the ingress, over real HTTP: keys from the replica's environment (as a Kubernetes Secret
would set them), 401 without or with a wrong key (before the body is validated), per-key rate limit with
429 + Retry-After, health/readiness/OpenAPI open, /admin/* only with an admin key."""
from __future__ import annotations

import time

import pytest
import requests

from serve.auth import KeyGuard, parse_keys
from tests.serve.conftest import ALICE, BOB, OPS

BODY = {"task": "cap2mol", "query": "an amino acid"}


def post(url, key=None, body=BODY, header="bearer"):
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return requests.post(f"{url}/v1/retrieve", json=body, headers=headers, timeout=60)


@pytest.mark.ray_cluster
def test_keys_health_and_admin(auth_app):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert requests.get(f"{auth_app}{path}", timeout=30).status_code == 200, path
    missing = post(auth_app)
    assert missing.status_code == 401 and "missing API key" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(auth_app, "not-a-real-key").status_code == 401
    # no key + a bad body: 401, the body is never looked at
    assert post(auth_app, body={"task": "nope"}).status_code == 401
    assert post(auth_app, ALICE).status_code == 200
    assert post(auth_app, ALICE, header="x-api-key").status_code == 200
    assert post(auth_app, OPS).status_code == 200  # an admin key works everywhere
    assert requests.get(f"{auth_app}/admin/info", timeout=30).status_code == 401
    user = requests.get(f"{auth_app}/admin/info", headers={"X-API-Key": BOB}, timeout=30)
    assert user.status_code == 403 and "admin key" in user.json()["detail"]
    admin = requests.get(f"{auth_app}/admin/info", headers={"X-API-Key": OPS}, timeout=30)
    assert admin.status_code == 200 and admin.json()["config"]["ingress"]["auth"]["enabled"] is True
    assert ALICE not in admin.text and OPS not in admin.text  # keys never echo


@pytest.mark.ray_cluster
def test_rate_limit_is_per_key_with_retry_after(auth_app):
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(10) as ex:  # 10 at once against a bucket of 3 (refilling at 0.5/s)
        answers = list(ex.map(lambda _: post(auth_app, BOB), range(10)))
    codes = sorted(r.status_code for r in answers)
    assert 3 <= codes.count(200) <= 5 and set(codes) == {200, 429}, codes
    limited = next(r for r in answers if r.status_code == 429)
    assert "rate limit" in limited.json()["detail"] and "'bob'" in limited.json()["detail"]
    retry = limited.headers.get("Retry-After")
    assert retry is not None and int(retry) >= 1
    assert post(auth_app, ALICE).status_code == 200  # another key is not throttled by bob's traffic
    time.sleep(int(retry) + 0.2)
    assert post(auth_app, BOB).status_code == 200  # and bob gets served again after Retry-After


@pytest.mark.ray_cluster
def test_admin_routes_are_closed_without_auth(icma_app):
    assert requests.get(f"{icma_app}/admin/info", timeout=30).status_code == 403


def test_key_parsing_and_guard_rules():
    keys = parse_keys(f"alice:{ALICE}, {BOB}", "K")
    assert sorted(keys.values()) == ["alice", "key-2"]
    with pytest.raises(ValueError, match="shorter than 8"):
        parse_keys("x:short", "K")
    with pytest.raises(ValueError, match="entry 1 has an empty name or key"):
        parse_keys(":abcdefghij", "K")
    guard = KeyGuard(keys, parse_keys(f"ops:{OPS}", "A"), rate_per_s=None, burst=1)
    assert guard.check("/healthz", {}) is None and guard.check("/v1/retrieve", {"x-api-key": ALICE}) is None
    assert guard.check("/v1/retrieve", {"authorization": f"bearer {ALICE}"}) is None
    assert guard.check("/admin/info", {"x-api-key": ALICE}).status == 403
    assert guard.check("/admin/info", {"x-api-key": OPS}) is None
    with pytest.raises(ValueError, match="neither RAY_ICMA_TEST_NO_KEYS nor"):
        KeyGuard.from_env("RAY_ICMA_TEST_NO_KEYS", "RAY_ICMA_TEST_NO_ADMIN", 1.0, 1)
