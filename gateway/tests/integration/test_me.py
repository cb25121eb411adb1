"""GET /v1/me against in-process gRPC doubles: parallel parts, one deadline,
a failing or slow part reported as unavailable while the rest answers 200."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import openapi_spec_validator
import pytest
from flask.testing import FlaskClient
from gateway.app import create_app, state_of
from gateway.backends import PAYMENT, PROFILE, RECOMMENDATION
from gateway.me import LazyPool, MeSettings
from gateway.resilience import BreakerState, guard_for, resilience_settings
from gateway.settings import GatewaySettings
from gateway.tokens import JwksCache, TokenVerifier
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard.profile.v1 import profile_pb2, profile_pb2_grpc
from switchyard.recommendation.v1 import recommendation_pb2, recommendation_pb2_grpc
from switchyard_dev.ports import free_port
from switchyard_kit import Backend

USER_ID = "0b8f0d7e-6f0e-4d55-9c1a-7a3f2b4c5d6e"
BUDGET_MS = 400


def _user(context: grpc.ServicerContext) -> str:
    return dict(context.invocation_metadata()).get("x-switchyard-user-id", "")


class Profiles(profile_pb2_grpc.ProfileServiceServicer):
    def GetMyProfile(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return profile_pb2.GetMyProfileResponse(
            profile=profile_pb2.Profile(user_id=_user(context), display_name="Ada")
        )


def _meet(rendezvous: threading.Barrier | None) -> bool:
    """True once the other call is in its handler too (both in flight at once)."""
    if rendezvous is None:
        return False
    try:
        rendezvous.wait()
    except threading.BrokenBarrierError:
        return False
    return True


class Wallets(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self) -> None:
        self.delay = 0.0
        self.rendezvous: threading.Barrier | None = None
        self.met = False

    def GetWallet(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.met = _meet(self.rendezvous)
        time.sleep(self.delay)
        return payment_pb2.GetWalletResponse(
            wallet=payment_pb2.Wallet(
                user_id=_user(context), balances=[payment_pb2.Balance(currency="EUR", amount=500)]
            )
        )


class Recommendations(recommendation_pb2_grpc.RecommendationServiceServicer):
    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.rendezvous: threading.Barrier | None = None
        self.met = False

    def GetRecommendations(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.met = _meet(self.rendezvous)
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.05)
            item = recommendation_pb2.Recommendation(sku="tea", score=1.5, source="popular")
            return recommendation_pb2.GetRecommendationsResponse(items=[item])
        finally:
            with self.lock:
                self.active -= 1


def _serve(register: Callable[[grpc.Server], None]) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def _closed_port() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def doubles() -> Iterator[dict[str, Any]]:
    wallets, recommendations = Wallets(), Recommendations()
    servers = {
        "profile": _serve(
            lambda s: profile_pb2_grpc.add_ProfileServiceServicer_to_server(Profiles(), s)
        ),
        "payment": _serve(
            lambda s: payment_pb2_grpc.add_PaymentServiceServicer_to_server(wallets, s)
        ),
        "recommendation": _serve(
            lambda s: recommendation_pb2_grpc.add_RecommendationServiceServicer_to_server(
                recommendations, s
            )
        ),
    }
    yield {
        "targets": {n: t for n, (_s, t) in servers.items()},
        "wallets": wallets,
        "recommendations": recommendations,
    }
    for server, _target in servers.values():
        server.stop(0)


def _app(
    targets: dict[str, str], jwks: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> FlaskClient:
    monkeypatch.setenv("GATEWAY_ME_TIMEOUT_MS", str(BUDGET_MS))
    backends = [
        Backend("profile", targets["profile"], PROFILE.service),
        Backend("payment", targets["payment"], PAYMENT.service),
        Backend("recommendation", targets["recommendation"], RECOMMENDATION.service),
    ]
    verifier = TokenVerifier(
        JwksCache(lambda: jwks, ttl=300, min_interval=0),
        issuer="switchyard-auth",
        audience="switchyard-api",
    )
    app = create_app(GatewaySettings(), backends, verifier=verifier)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def bearer(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=USER_ID)}"}


def test_every_part_answers(
    doubles: dict[str, Any],
    jwks: list[dict[str, str]],
    bearer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _app(doubles["targets"], jwks, monkeypatch)
    response = client.get("/v1/me", headers=bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["user_id"] == USER_ID
    assert body["profile"]["display_name"] == "Ada"
    assert body["wallet"]["balances"] == [{"currency": "EUR", "amount": 500}]
    assert body["recommendations"]["items"] == [{"sku": "tea", "score": 1.5, "source": "popular"}]


def test_a_stopped_backend_is_unavailable_and_the_rest_answers(
    doubles: dict[str, Any],
    jwks: list[dict[str, str]],
    bearer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = dict(doubles["targets"], recommendation=_closed_port())
    client = _app(targets, jwks, monkeypatch)
    started = time.monotonic()
    response = client.get("/v1/me", headers=bearer)
    assert time.monotonic() - started < BUDGET_MS / 1000 + 0.3
    assert response.status_code == 200
    body = response.get_json()
    assert body["recommendations"] == {"status": "unavailable"}
    assert body["profile"]["display_name"] == "Ada"
    assert body["wallet"]["user_id"] == USER_ID


def test_a_slow_backend_is_cut_at_the_deadline(
    doubles: dict[str, Any],
    jwks: list[dict[str, str]],
    bearer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doubles["wallets"].delay = 2.0
    client = _app(doubles["targets"], jwks, monkeypatch)
    started = time.monotonic()
    response = client.get("/v1/me", headers=bearer)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert BUDGET_MS / 1000 - 0.05 <= elapsed < BUDGET_MS / 1000 + 0.3
    body = response.get_json()
    assert body["wallet"] == {"status": "unavailable"}
    assert body["recommendations"]["items"][0]["sku"] == "tea"


def test_the_parts_run_in_parallel(
    doubles: dict[str, Any],
    jwks: list[dict[str, str]],
    bearer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wallet and recommendation doubles each wait in their handler for the
    # other: they can only both get through if the calls are in flight at once
    # (one after the other, the first waits out the barrier and gives up).
    rendezvous = threading.Barrier(2, timeout=BUDGET_MS / 1000 - 0.1)
    doubles["wallets"].rendezvous = doubles["recommendations"].rendezvous = rendezvous
    client = _app(doubles["targets"], jwks, monkeypatch)
    assert client.get("/v1/me", headers=bearer).status_code == 200
    assert doubles["wallets"].met
    assert doubles["recommendations"].met


def test_no_token_is_401(
    doubles: dict[str, Any], jwks: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = _app(doubles["targets"], jwks, monkeypatch).get("/v1/me")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_the_spec_documents_me(
    doubles: dict[str, Any], jwks: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _app(doubles["targets"], jwks, monkeypatch)
    spec = state_of(client.application).spec
    openapi_spec_validator.validate(spec)
    me = spec["paths"]["/v1/me"]["get"]
    schema = me["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"user_id", "profile", "wallet", "recommendations"}
    assert "/v1/recommendations" in spec["paths"]
    served = client.get("/openapi.json").get_json()
    assert "/v1/me" in served["paths"]


def test_every_part_gives_its_slot_back_and_feeds_the_breaker(
    doubles: dict[str, Any],
    jwks: list[dict[str, str]],
    bearer: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parts run on the pool's threads: each must free its backend's slot
    (or the limit would fill after a few requests) and count for the
    backend's breaker (a stopped backend opens it)."""
    targets = dict(doubles["targets"], recommendation=_closed_port())
    client = _app(targets, jwks, monkeypatch)
    backends = state_of(client.application).backends
    requests = 3 * resilience_settings().concurrency_max
    for _ in range(requests):
        body = client.get("/v1/me", headers=bearer).get_json()
        assert body["profile"]["display_name"] == "Ada"
        assert body["wallet"]["user_id"] == USER_ID
        assert body["recommendations"] == {"status": "unavailable"}
    # A part's thread frees its slot just after its answer is out: allow it a moment.
    limiters = [guard_for(backends[name]).limiter for name in ("profile", "payment")]
    deadline = time.monotonic() + 5
    while any(limiter.in_flight for limiter in limiters) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [limiter.in_flight for limiter in limiters] == [0, 0]
    assert guard_for(backends["recommendation"]).breaker.state is BreakerState.OPEN


def test_the_pool_is_made_per_process() -> None:
    pool = LazyPool(2)
    first = pool.get()
    assert pool.get() is first
    pool._pid = -1  # as after a fork
    assert pool.get() is not first
    assert MeSettings().timeout_ms == 1500
