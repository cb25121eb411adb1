"""The gateway's settings, read once from the environment (GATEWAY_*)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from switchyard_kit import CommonSettings, load_settings

DEFAULT_ISSUER = "switchyard-auth"
DEFAULT_AUDIENCE = "switchyard-api"


class GatewaySettings(CommonSettings):
    """Where the gateway listens, how long it waits, and where its backends are.

    Example::

        settings = load_gateway_settings()   # GATEWAY_PORT=9000 -> settings.port == 9000
    """

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", frozen=True, populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # gunicorn: worker processes and threads per worker (gthread).
    workers: int = Field(default=2, ge=1)
    threads: int = Field(default=8, ge=1)
    # SIGTERM: in-flight requests get this long to finish.
    graceful_timeout_seconds: int = Field(default=20, ge=0)
    keepalive_seconds: int = Field(default=5, ge=0)
    # A request that waited longer than this for a worker thread is answered
    # 503 unprocessed (gateway.admission); 0 turns shedding off. 500 ms from
    # 512 closed-loop connections on the bench's profile read (2 x 8 threads):
    # a client resends at once, so sheds/s ~ excess connections / limit, and a
    # shed still costs ~0.35 ms of gunicorn's request handling. 250 ms shed
    # ~1500/s and halved the admitted rate; 500 ms shed ~900/s and kept it,
    # admitted p99 ~150 ms against ~1 s without shedding; 1000 ms let /readyz
    # take over 1 s, its probe timeout (k8s/base/gateway). Well above bursts
    # and CPU-throttling stalls: a healthy gateway does not shed.
    max_queue_wait_ms: int = Field(default=500, ge=0)
    # Deadline of a route whose proto sets no timeout_ms.
    default_timeout_ms: int = Field(default=3000, ge=1)
    # Requests with a larger body answer 413.
    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    # Signing keys fetched from AuthService.GetJwks are reused this long...
    jwks_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    # ...and a token with an unknown kid refetches them at most this often.
    jwks_refetch_min_interval_seconds: float = Field(default=30.0, ge=0)
    jwks_fetch_timeout_seconds: float = Field(default=2.0, gt=0)
    # Revoked sessions (logout etc.), with Redis (REDIS_URL): each worker
    # follows auth's revocation stream into a local set (bound: milliseconds);
    # with revocation_stream off, one EXISTS per authenticated request instead
    # (bound: immediate, for a Redis round trip per request). Without Redis,
    # or while it fails, polled from AuthService.ListRevokedSessions at most
    # every revocation_poll_interval_seconds (the revocation bound then).
    revocation_check: bool = True
    revocation_stream: bool = True
    revocation_poll_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    # Revocations are remembered this long: at least the access-token TTL plus leeway.
    revocation_lookback_seconds: float = Field(default=1200.0, gt=0)
    # Clock skew tolerated on exp / nbf / iat.
    token_leeway_seconds: float = Field(default=10.0, ge=0, le=300)
    token_issuer: str = Field(
        default=DEFAULT_ISSUER, validation_alias=AliasChoices("AUTH_TOKEN_ISSUER")
    )
    token_audience: str = Field(
        default=DEFAULT_AUDIENCE, validation_alias=AliasChoices("AUTH_TOKEN_AUDIENCE")
    )
    # Backends: a name gRPC resolves (host:port or dns:///name:port).
    auth_target: str = Field(
        default="127.0.0.1:50051", validation_alias=AliasChoices("AUTH_TARGET")
    )
    profile_target: str = Field(
        default="127.0.0.1:50052", validation_alias=AliasChoices("PROFILE_TARGET")
    )
    payment_target: str = Field(
        default="127.0.0.1:50053", validation_alias=AliasChoices("PAYMENT_TARGET")
    )
    recommendation_target: str = Field(
        default="127.0.0.1:50054", validation_alias=AliasChoices("RECOMMENDATION_TARGET")
    )

    @property
    def bind_address(self) -> str:
        return f"{self.host}:{self.port}"

    def backend_target(self, backend: str) -> str:
        """The target of `backend` ("auth" -> AUTH_TARGET)."""
        target = getattr(self, f"{backend}_target", None)
        if not isinstance(target, str):
            raise KeyError(f"no <{backend.upper()}>_TARGET setting")
        return target


def load_gateway_settings() -> GatewaySettings:
    """GatewaySettings from the environment, or ConfigurationError naming the variable."""
    return load_settings(GatewaySettings)
