"""No input reaches a 500: every public route, hostile input, on PostgreSQL + Redis.

The routes come from the gateway's own OpenAPI document (built from the same
descriptors as its route table), so a new route is covered as soon as it
exists; one with a request body needs a valid sample body in SAMPLE_BODIES
(the test naming it fails until it has one), which each case breaks in one
place. The cases:

- every path id: NUL (alone and inside), an escape character, a line break,
  a bidi override;
- every integer query parameter: 5,000 digits, either sign; every string one:
  NUL, an escape, a bidi override; page tokens: garbage, 2,500 nested `[`,
  a well-formed token carrying NUL;
- every body: the whole body as 2,500 nested arrays or objects, a field
  nested 2,500 deep, a 5,000-digit integer in every integer field, NUL, an
  escape, a bidi override and a trailing line break in every string field
  (nested ones and map keys included; see SECRETS and LINE_BREAK_OK for the
  values a field may rightly hold), and a chunked body over the gateway's
  limit (413).

Every answer is a 4xx with a problem+json body, and nothing is written: the
row count of every table of every service's database is the same after the
case as before it.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from gateway.app import create_app, state_of
from switchyard_dev.launcher import SERVICES

from e2e.harness import Account, AuthActions, RunningPlatform

PROBLEM = "application/problem+json"
HUGE = "9" * 5000  # past Python's 4,300-digit int conversion limit
# A query string cannot carry 5,000 digits: gunicorn's request line stops at
# 4,094 bytes (414). This many still overflow every integer field.
HUGE_IN_QUERY = "9" * 3000
DEEP = 2500  # past the JSON decoder's recursion limit
PASSWORD = "correct horse battery staple"
BAD_TEXT = {
    "nul": "a\x00b",
    "escape": "a\x1b[2Jb",
    "bidi": "invoice\u202efdp.exe",
    # What an anchored `^...$` pattern let through before identifiers were
    # matched whole ("shop\n").
    "trailing-line-break": "shop\n",
}
# Where a trailing line break is rightly no error: multi-line text (bios,
# preference values) and display names, which are trimmed before the check.
LINE_BREAK_OK = {"bio", "entry", "display_name"}
# Secrets are hashed or looked up, never shown: a bidi control in one is no
# spoofing risk and stays allowed; control characters are still refused.
SECRETS = {"password", "current_password", "new_password", "refresh_token"}
# Where the contract answers success for any value: logging out with an
# unknown refresh token is "done" and says nothing (services/auth/README.md).
ALWAYS_DONE = {("AuthService_Logout", "refresh_token")}
# Tables that record attempts by design (failed sign-ins in the audit trail).
RECORDS_ATTEMPTS = {"auth.audit_events"}
# Databases no request writes: recommendation's is written only by its event
# consumer, which reads the payments stream every platform of the test
# session publishes to, so its counts move with other tests' payments. What a
# request could send it starts as a row in payment's outbox, which is counted.
WRITTEN_BY_EVENTS_ONLY = {"recommendation"}
BAD_PATH_IDS = {
    "nul": "%00",
    "nul-inside": "%00abc",
    "escape": "%1B",
    "line-break": "abc%0A",
    "bidi": "%E2%80%AE",
}
# Larger than GATEWAY_MAX_BODY_BYTES (64 KiB by default), sent without a length.
CHUNKED_BYTES = 256 * 1024

# A valid body per operation with one (placeholders filled per test run); each
# case breaks one part of it.
SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "AuthService_SignUp": {"email": "{new_email}", "password": PASSWORD, "display_name": "Ada"},
    "AuthService_Login": {"email": "{new_email}", "password": PASSWORD},
    "AuthService_Refresh": {"refresh_token": "{refresh_token}"},
    "AuthService_Logout": {"refresh_token": "{refresh_token}"},
    "AuthService_ChangePassword": {
        "current_password": PASSWORD,
        "new_password": "another fine passphrase",
    },
    "AuthService_RevokeOtherSessions": {},
    "ProfileService_UpdateMyProfile": {
        "display_name": "Ada",
        "bio": "Analyst",
        "avatar_url": "https://example.com/ada.png",
        "locale": "en-GB",
        "preferences": {"theme": "dark"},
    },
    "PaymentService_TopUpWallet": {"amount": 100, "currency": "EUR"},
    "PaymentService_CreatePayment": {
        "amount": 200,
        "currency": "EUR",
        "merchant_id": "shop-1",
        "items": [{"sku": "tea-1", "quantity": 2, "unit_amount": 100}],
        "description": "Tea",
    },
    "PaymentService_RefundPayment": {"amount": 1, "currency": "EUR"},
}


def _spec() -> dict[str, Any]:
    """The OpenAPI document the gateway serves, built the way it builds it."""
    spec: dict[str, Any] = state_of(create_app()).spec
    return spec


SPEC = _spec()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any] = field(compare=False, repr=False)

    @property
    def operation_id(self) -> str:
        return str(self.spec.get("operationId", f"{self.method} {self.path}"))

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return resolve(schema) if schema is not None else None

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security"))


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = SPEC["components"]["schemas"][name]
    return schema


def operations() -> list[Operation]:
    found = []
    for path, methods in SPEC["paths"].items():
        for method, spec in methods.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append(Operation(method.upper(), path, spec))
    return found


Path = tuple[str | int, ...]


def leaves(schema: dict[str, Any], kind: str, at: Path = ()) -> Iterator[Path]:
    """Paths (keys and list indexes) of every `kind` ("string", "integer")
    field in a body of `schema`; map keys appear as the key "{key}"."""
    schema = resolve(schema)
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "object" in types:
        for name, child in schema.get("properties", {}).items():
            yield from leaves(child, kind, (*at, name))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if kind == "string":
                yield (*at, "{key}")
            yield from leaves(extra, kind, (*at, "entry"))
    elif "array" in types:
        yield from leaves(schema.get("items", {}), kind, (*at, 0))
    elif kind in types:
        yield at


def with_value(body: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """`body` with the field at `path` set to `value` (created when absent)."""
    changed = copy.deepcopy(body)
    target: Any = changed
    for step, following in itertools.pairwise(path):
        if isinstance(target, list):
            while len(target) <= int(step):
                target.append({})
            target = target[int(step)]
            continue
        if step not in target or not isinstance(target[step], dict | list):
            target[step] = [] if isinstance(following, int) else {}
        target = target[step]
    last = path[-1]
    if last == "{key}":
        target[value] = "x"
    elif isinstance(target, list):
        while len(target) <= int(last):
            target.append(None)
        target[int(last)] = value
    else:
        target[last] = value
    return changed


def dotted(path: Path) -> str:
    return ".".join(str(step) for step in path)


@dataclass(frozen=True)
class Case:
    """One hostile request: `body` is JSON text with placeholders still in it,
    or None; `chunked` sends an oversized body without a length."""

    operation: Operation
    what: str
    path_values: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    chunked: bool = False
    # The body field this case breaks, if any.
    field_name: str = ""

    @property
    def id(self) -> str:
        return f"{self.operation.operation_id}:{self.what}"


def _raw_json(value: Any, replacements: dict[str, str]) -> str:
    text = json.dumps(value)
    for marker, raw in replacements.items():
        text = text.replace(json.dumps(marker), raw)
    return text


def body_cases(operation: Operation, schema: dict[str, Any]) -> Iterator[Case]:
    sample = SAMPLE_BODIES.get(operation.operation_id)
    if sample is None:
        return  # test_every_body_route_has_a_sample fails instead
    first = next(iter(schema.get("properties", {})), "field")
    yield Case(operation, "body:nested-arrays", body="[" * DEEP + "]" * DEEP)
    yield Case(operation, "body:nested-objects", body='{"a": ' * DEEP + "1" + "}" * DEEP)
    nested = {first: "@nested@"}
    yield Case(
        operation,
        f"body:{first}:nested",
        body=_raw_json(nested, {"@nested@": "[" * DEEP + "]" * DEEP}),
    )
    yield Case(operation, "body:huge-integer", body=_raw_json({first: "@huge@"}, {"@huge@": HUGE}))
    for path in leaves(schema, "integer"):
        for sign in ("", "-"):
            broken = with_value(sample, path, "@huge@")
            yield Case(
                operation,
                f"body:{dotted(path)}:{sign}huge",
                body=_raw_json(broken, {"@huge@": sign + HUGE}),
            )
    for path in leaves(schema, "string"):
        for name, text in BAD_TEXT.items():
            if name == "bidi" and path[-1] in SECRETS:
                continue
            if name == "trailing-line-break" and path[-1] in LINE_BREAK_OK:
                continue
            yield Case(
                operation,
                f"body:{dotted(path)}:{name}",
                body=json.dumps(with_value(sample, path, text)),
                field_name=str(path[-1]),
            )
    yield Case(operation, "body:chunked-over-limit", body=json.dumps(sample), chunked=True)


def query_cases(operation: Operation) -> Iterator[Case]:
    for parameter in operation.parameters("query"):
        name = parameter["name"]
        kind = parameter.get("schema", {}).get("type")
        values: dict[str, str] = {}
        if kind == "integer":
            values = {"huge": HUGE_IN_QUERY, "-huge": "-" + HUGE_IN_QUERY}
        elif kind == "string":
            values = dict(BAD_TEXT)
        if name == "page_token":
            forged = {"t": "2025-01-01T00:00:00+00:00", "i": "\x00"}
            for label, raw in {
                "nested": b"[" * DEEP,
                "nested-object": b'{"t": ' + b"[" * DEEP,
                "nul-id": json.dumps(forged).encode(),
                "huge-number": HUGE_IN_QUERY[:2000].encode(),
            }.items():
                values[label] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            values["garbage"] = "!!not-a-token!!"
        for label, value in values.items():
            yield Case(operation, f"query:{name}:{label}", query={name: value})


def cases() -> list[Case]:
    found: list[Case] = []
    for operation in operations():
        for parameter in operation.parameters("path"):
            for label, value in BAD_PATH_IDS.items():
                found.append(
                    Case(operation, f"path:{parameter['name']}:{label}", {parameter["name"]: value})
                )
        found.extend(query_cases(operation))
        schema = operation.body_schema
        if schema is not None:
            found.extend(body_cases(operation, schema))
    return found


CASES = cases()


def test_the_table_covers_every_route() -> None:
    routes = operations()
    assert len(routes) >= 20  # the document is the whole API, not an empty one
    with_input = {
        op
        for op in routes
        if op.parameters("path") or op.parameters("query") or op.body_schema is not None
    }
    assert with_input <= {case.operation for case in CASES}


def test_every_body_route_has_a_sample() -> None:
    missing = [
        op.operation_id
        for op in operations()
        if op.body_schema is not None and op.operation_id not in SAMPLE_BODIES
    ]
    assert not missing, f"add a valid body to SAMPLE_BODIES for {missing}"


# -- running a case ---------------------------------------------------------------


@dataclass
class Victim:
    """The account every protected case runs as, with a payment to refund."""

    account: Account
    payment_id: str


@pytest.fixture(scope="module")
def client(platform: RunningPlatform) -> Iterator[httpx.Client]:
    with platform.client() as api:
        yield api


@pytest.fixture(scope="module")
def victim(client: httpx.Client) -> Victim:
    account = AuthActions(client, wait_for_profiles=True).signup()
    headers = account.headers
    top_up = client.post(
        "/v1/wallet/top-ups",
        json={"amount": 10_000, "currency": "EUR"},
        headers=headers | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert top_up.status_code == 201, top_up.text
    payment = client.post(
        "/v1/payments",
        json=SAMPLE_BODIES["PaymentService_CreatePayment"],
        headers=headers | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert payment.status_code == 201, payment.text
    return Victim(account, payment.json()["id"])


@pytest.fixture(scope="module")
def settled(platform: RunningPlatform, victim: Victim) -> Victim:
    """The victim once the recommendation service learned their payment, so
    no write of the set-up lands during a case."""
    engine = sa.create_engine(platform.database_url("recommendation"))
    query = sa.text("SELECT count(*) FROM purchases WHERE payment_id = :p")
    deadline = time.monotonic() + 15
    try:
        while True:
            with engine.connect() as connection:
                if connection.execute(query, {"p": victim.payment_id}).scalar_one():
                    return victim
            assert time.monotonic() < deadline, "the payment event was not applied"
            time.sleep(0.1)
    finally:
        engine.dispose()


class RowCounts:
    """Row counts of every table of every service's database."""

    def __init__(self, platform: RunningPlatform) -> None:
        self.engines = {name: sa.create_engine(platform.database_url(name)) for name in SERVICES}

    def take(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for service, engine in self.engines.items():
            with engine.connect() as connection:
                if service in WRITTEN_BY_EVENTS_ONLY:
                    continue
                for table in sa.inspect(connection).get_table_names():
                    if f"{service}.{table}" in RECORDS_ATTEMPTS:
                        continue
                    quoted = connection.dialect.identifier_preparer.quote(table)
                    query = sa.text(f"SELECT count(*) FROM {quoted}")  # noqa: S608 - catalogue names
                    counts[f"{service}.{table}"] = connection.execute(query).scalar_one()
        return counts

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def row_counts(platform: RunningPlatform) -> Iterator[RowCounts]:
    counts = RowCounts(platform)
    yield counts
    counts.close()


def _url(case: Case, victim: Victim) -> str:
    known = {"payment_id": victim.payment_id, "user_id": victim.account.user_id}
    path = case.operation.path
    for parameter in case.operation.parameters("path"):
        name = parameter["name"]
        value = case.path_values.get(name, known.get(name, str(uuid.uuid4())))
        path = path.replace("{" + name + "}", value)
    return path


def _body(case: Case, victim: Victim) -> bytes | None:
    if case.body is None:
        return None
    fills = {
        "{new_email}": f"nobody-{uuid.uuid4().hex[:12]}@example.com",
        "{refresh_token}": victim.account.refresh_token,
    }
    text = case.body
    for marker, value in fills.items():
        text = text.replace(marker, value)
    return text.encode()


def _chunks(body: bytes) -> Iterator[bytes]:
    # Valid JSON up front, then padding: the whole must be refused, not cut and read.
    yield body[:-1] + b', "padding": "'
    for _ in range(CHUNKED_BYTES // 4096):
        yield b"x" * 4096
    yield b'"}'


def _send(client: httpx.Client, case: Case, victim: Victim) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if case.operation.secured:
        headers |= victim.account.headers
    if any(p["name"].lower() == "idempotency-key" for p in case.operation.parameters("header")):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    body = _body(case, victim)
    url = httpx.URL(_url(case, victim), params=case.query or None)
    if case.chunked and body is not None:
        return client.request(case.operation.method, url, headers=headers, content=_chunks(body))
    return client.request(case.operation.method, url, headers=headers, content=body)


# PostgreSQL + Redis only: PostgreSQL is where NUL turned into a driver ValueError (500).
@pytest.mark.parametrize("platform", ["production"], indirect=True)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_a_4xx_problem_and_writes_nothing(
    client: httpx.Client, settled: Victim, row_counts: RowCounts, case: Case
) -> None:
    before = row_counts.take()
    response = _send(client, case, settled)
    if (case.operation.operation_id, case.field_name) in ALWAYS_DONE and response.is_success:
        assert row_counts.take() == before
        return
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith(PROBLEM), response.text[:500]
    problem = response.json()
    assert problem["status"] == response.status_code
    assert {"type", "title", "detail", "code", "request_id"} <= problem.keys()
    if case.chunked:
        assert response.status_code == 413, response.text[:500]
    elif response.status_code == 400 and problem["code"] == "INVALID_ARGUMENT":
        assert problem.get("errors"), f"a 400 names the field: {problem}"
    assert row_counts.take() == before
