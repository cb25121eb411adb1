"""The gateway's settings, read once from the environment (GATEWAY_*)."""

from __future__ import annotations

import ipaddress

from limits import parse_many
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict
from switchyard.services import load_services
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
    # Backends: `<name>_target`, read from <NAME>_TARGET, for each service of
    # the registry (switchyard/services.toml), default 127.0.0.1:<its port>: a
    # name gRPC resolves (host:port or dns:///name:port). backend_target() reads them.
    for _service in load_services():
        __annotations__[f"{_service.name}_target"] = "str"
        vars()[f"{_service.name}_target"] = Field(
            default=f"127.0.0.1:{_service.port}",
            validation_alias=AliasChoices(f"{_service.prefix}_TARGET"),
        )
    del _service

    # Prometheus /metrics on a port of its own (0: not served), bound to
    # GATEWAY_HOST; the public port answers 404 on /metrics.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # The client address (rate limits, the address sent to auth): by default
    # the TCP peer, and X-Forwarded-For is ignored, as it must be on a gateway
    # clients reach directly (anyone can send the header). Behind N proxies
    # (the k8s ingress: 1), the address the Nth proxy from the gateway saw,
    # read by werkzeug's ProxyFix; with trusted_proxy_cidrs set, only when the
    # TCP peer is in one of those networks.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)
    trusted_proxy_cidrs: str = ""
    # Per-client-address limits of the routes whose proto names one
    # (rate_limit), in the notation of the `limits` package: "5/minute;30/hour"
    # is at most 5 in any minute and 30 in any hour (a burst of 5, then the
    # hourly rate); "" turns that limit off. Kept in Redis with REDIS_URL
    # (shared by every worker and pod), else in each worker's memory.
    # Signup: a person signs up once; a few retries (typos, a second account)
    # fit, a script creating accounts or probing which e-mails are taken does
    # not. Login: a user who mistypes a password retries a few times; offices
    # behind one NAT address share the budget, hence higher (auth throttles
    # failures per account on its own). Refresh: clients refresh every few
    # minutes per tab, never dozens of times a minute.
    rate_limit_signup: str = "5/minute;30/hour"
    rate_limit_login: str = "30/minute;300/hour"
    rate_limit_refresh: str = "60/minute"
    # Redis failing: the limits fail open (logged and counted) after at most this.
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0, le=5)
    # Slow clients (gateway.header_wait): a connection gets a worker thread
    # only once its request line and headers are complete; it has this long to
    # send them (from its first byte, or from being accepted) and at most
    # max_header_bytes, else it is closed without taking a thread.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)

    @field_validator("trusted_proxy_cidrs")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for part in _split(value):
            ipaddress.ip_network(part, strict=False)  # ValueError names the bad network
        return value

    @field_validator("rate_limit_signup", "rate_limit_login", "rate_limit_refresh")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value.strip():
            parse_many(value)  # ValueError on a malformed rate
        return value

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(part, strict=False) for part in _split(self.trusted_proxy_cidrs)
        )

    def rate_limit(self, name: str) -> str:
        """The rate of the limit called `name` ("signup" -> GATEWAY_RATE_LIMIT_SIGNUP)."""
        value = getattr(self, f"rate_limit_{name}", None)
        if not isinstance(value, str):
            raise KeyError(f"no GATEWAY_RATE_LIMIT_{name.upper()} setting")
        return value

    @property
    def bind_address(self) -> str:
        return f"{self.host}:{self.port}"

    def backend_target(self, backend: str) -> str:
        """The target of `backend` ("auth" -> AUTH_TARGET)."""
        target = getattr(self, f"{backend}_target", None)
        if not isinstance(target, str):
            raise KeyError(f"no <{backend.upper()}>_TARGET setting")
        return target


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_gateway_settings() -> GatewaySettings:
    """GatewaySettings from the environment, or ConfigurationError naming the variable."""
    return load_settings(GatewaySettings)
