"""The published contract, fuzzed: schemathesis against the real platform.

One platform of its own in production mode (a fresh PostgreSQL database per
service, the real Redis with streams of its own), loaded with the spec it
serves at /openapi.json, fuzzed with every check schemathesis has, in every
phase: the spec's examples, coverage (boundary and negative values of every
constraint), fuzzing (positive and negative data) and the stateful phase
(sequences of calls that follow the spec's links). Each failure is a place
where the published contract and the server disagree.

Credentials: every operation gets a valid bearer token of a signed-up
account. The operations that end sessions (logout, revoking one or the other
sessions, changing the password) get an account of their own per call, so the
shared token the others use stays valid.

Settings (the defaults size the run for CI: about 4 minutes on 2 cores):
- SWITCHYARD_FUZZ_EXAMPLES: examples per operation in the fuzzing phase and
  scenarios of the stateful phase (default 30);
- SWITCHYARD_FUZZ_SEED: the seed (default pinned, so CI runs are repeatable;
  `random` for a new one each run).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from gateway.app import create_app, state_of
from schemathesis import Case, CheckContext, Response
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import positive_data_acceptance

from e2e.harness import RunningPlatform, start_platform

EXAMPLES = int(os.environ.get("SWITCHYARD_FUZZ_EXAMPLES", "30"))
# CI runs this seed: a failure there replays on any machine. "random" explores.
_SEED = os.environ.get("SWITCHYARD_FUZZ_SEED", "20261129")
SEED = None if _SEED == "random" else int(_SEED)
IDEMPOTENCY_KEY = "Idempotency-Key"
PASSWORD = "correct horse battery staple"
MAX_AMOUNT = 2**53 - 1
SPEC = state_of(create_app()).spec
CURRENCIES: list[str] = SPEC["components"]["schemas"]["switchyard.payment.v1.TopUpWalletRequest"][
    "properties"
]["currency"]["enum"]
# Operations that end the session of the token they are called with (or, for
# revoke-others and the password change, every other session of the caller).
SESSION_ENDING = {
    "POST /v1/auth/logout",
    "POST /v1/auth/password",
    "DELETE /v1/auth/sessions/{session_id}",
    "POST /v1/auth/sessions:revoke-others",
}
AUTHORIZATION = "Authorization"
# Cases run per operation, for the summary.
CASES: Counter[str] = Counter()


class Accounts:
    """Signs accounts up through the public API: one shared account, renewed
    before its access token expires, and fresh ones on demand."""

    def __init__(self, base_url: str) -> None:
        self.api = httpx.Client(base_url=base_url, timeout=30)
        self.lock = threading.Lock()
        self.shared: dict[str, Any] | None = None
        self.shared_until = 0.0

    def fresh(self) -> dict[str, Any]:
        email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
        response = self.api.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def close(self) -> None:
        self.api.close()

    def token(self) -> str:
        with self.lock:
            if self.shared is None or time.monotonic() > self.shared_until:
                self.shared = self.fresh()
                self.shared_until = time.monotonic() + self.shared["expires_in"] / 2
                self.fund(str(self.shared["access_token"]))
            return str(self.shared["access_token"])

    def fund(self, token: str) -> None:
        """A wallet in every currency the spec allows, full: so that a valid
        payment meets a wallet able to pay it, not only a refusal of state."""
        for currency in CURRENCIES:
            response = self.api.post(
                "/v1/wallet/top-ups",
                json={"amount": MAX_AMOUNT, "currency": currency},
                headers={"Authorization": f"Bearer {token}", IDEMPOTENCY_KEY: str(uuid.uuid4())},
            )
            assert response.status_code == 201, response.text


# Problems a schema-valid request rightly gets, which no schema can rule out:
# the system's state refuses it (FAILED_PRECONDITION: no wallet in that
# currency, too little money, a balance past the limit; it succeeds in another
# state), or it carries an opaque token the server never issued (a page token
# is only ever copied from a previous answer's next_page_token).
OPAQUE_FIELDS = {"page_token"}
# Rules JSON Schema cannot state, each on one field of one operation and
# known by its message (the spec says them in the field's description): the
# payment's cross-field rules (CEL in payment.proto), an email domain mail can
# reach (a dot, no special-use name: RFC 6761's list), the password policy (a
# list of common passwords, not the email address: auth's domain) and a
# locale's subtags being registered and not repeated (a registry look-up and a
# count, beyond the syntax the pattern states).
UNSTATABLE = {
    ("PaymentService_CreatePayment", "amount", "must equal the sum"),
    ("PaymentService_CreatePayment", "items[].unit_amount", "exceeds"),
    ("AuthService_SignUp", "email", "special-use or reserved name"),
    ("AuthService_SignUp", "email", "should have a period"),
    ("AuthService_SignUp", "password", "too common"),
    ("AuthService_SignUp", "password", "must not be your email address"),
    ("AuthService_ChangePassword", "new_password", "too common"),
    ("ProfileService_UpdateMyProfile", "locale", "registered"),
    ("ProfileService_UpdateMyProfile", "locale", "must not repeat"),
}


@schemathesis.check
def positive_data_acceptance_in_state(ctx: CheckContext, response: Response, case: Case) -> None:
    """schemathesis' positive_data_acceptance (ST202), less the refusals above."""
    if response.status_code == 400 and _refused_by_state(response, case):
        return
    positive_data_acceptance(ctx, response, case)


def _refused_by_state(response: Response, case: Case) -> bool:
    try:
        problem = response.json()
    except ValueError:
        return False
    if not isinstance(problem, dict):
        return False
    if problem.get("code") == "FAILED_PRECONDITION":
        return True
    errors = problem.get("errors") or []
    if problem.get("code") != "INVALID_ARGUMENT" or not errors:
        return False
    operation_id = case.operation.definition.raw["operationId"]

    def unstatable(error: dict[str, Any]) -> bool:
        field = re.sub(r"\[\d+\]", "[]", str(error.get("field")))
        description = str(error.get("description"))
        return field in OPAQUE_FIELDS or any(
            (operation_id, field) == (rule[0], rule[1]) and rule[2] in description
            for rule in UNSTATABLE
        )

    return all(isinstance(error, dict) and unstatable(error) for error in errors)


class _Credentials:
    """The accounts of the platform under test (set by the `fuzz_platform` fixture)."""

    accounts: Accounts | None = None


SCHEMA = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                # Replays come from the seed, not from a .hypothesis folder.
                "database": "none",
            },
            "checks": {
                "enabled": True,
                # Replaced by positive_data_acceptance_in_state (above), which calls it.
                "positive_data_acceptance": {"enabled": False},
            },
            "phases": {"stateful": {"max-steps": 10}},
        }
    ),
)


def prepare(case: Case) -> dict[str, str]:
    """What a well-behaved client adds to a request: an Idempotency-Key of
    its own where the operation takes one (set on the case), and its bearer
    token (returned, to be sent as explicit headers, so that schemathesis'
    auth checks know it for a valid one and probe without it). Never what
    the case deliberately leaves out or breaks. Done at call time: the
    coverage phase builds its cases at collection, before any platform runs."""
    accounts = _Credentials.accounts
    assert accounts is not None, "the fuzz_platform fixture sets the accounts"
    negated = set(negated_parameters(case.meta))
    operation = case.operation.definition.raw
    takes_key = any(
        parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_KEY
        for parameter in operation.get("parameters", [])
    )
    headers_negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    key_untouched = (IDEMPOTENCY_KEY, ParameterLocation.HEADER) not in negated
    if takes_key and key_untouched and (negated or not headers_negative):
        # A fresh key per request: hypothesis draws small values ("0") again
        # and again, and one key with another body is rightly a 422.
        case.headers = {**(case.headers or {}), IDEMPOTENCY_KEY: str(uuid.uuid4())}
    body_negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    if operation["operationId"] == "PaymentService_CreatePayment" and not body_negative:
        _amount_of_the_items(case.body)
    if not operation.get("security") or (AUTHORIZATION, ParameterLocation.HEADER) in negated:
        return {}
    if f"{case.method.upper()} {case.operation.path}" not in SESSION_ENDING:
        return {AUTHORIZATION: f"Bearer {accounts.token()}"}
    account = accounts.fresh()
    password_change = case.operation.path == "/v1/auth/password"
    if password_change and isinstance(case.body, dict) and not body_negative:
        # Changing the password takes the current one: a valid request knows it.
        case.body["current_password"] = PASSWORD
    return {AUTHORIZATION: f"Bearer {account['access_token']}"}


@pytest.fixture(scope="module")
def fuzz_platform(
    tmp_path_factory: pytest.TempPathFactory,
    create_postgres_database: Any,
    redis_url: str,
) -> Iterator[RunningPlatform]:
    running = start_platform(
        "production", tmp_path_factory.mktemp("platform-fuzz"), create_postgres_database, redis_url
    )
    with running.client() as api:
        # What is fuzzed is what the platform publishes.
        assert api.get("/openapi.json").json() == json.loads(json.dumps(SPEC))
    _Credentials.accounts = Accounts(running.base_url)
    yield running
    _Credentials.accounts.close()
    _Credentials.accounts = None
    running.stop()


@SCHEMA.parametrize()
def test_operation(case: Case, fuzz_platform: RunningPlatform) -> None:
    CASES[case.operation.label] += 1
    case.call_and_validate(base_url=fuzz_platform.base_url, headers=prepare(case))


def test_stateful(fuzz_platform: RunningPlatform) -> None:
    base_url = fuzz_platform.base_url
    disagreements: list[Exception] = []

    class Machine(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            CASES[f"stateful: {case.operation.label}"] += 1
            return {"base_url": base_url, "headers": prepare(case)}

        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            # As call_and_validate does: the explicit headers are the client's credentials.
            try:
                case.validate_response(
                    response,
                    headers=kwargs.get("headers"),
                    additional_checks=additional_checks,
                    transport_kwargs=kwargs,
                    recorder=self.recorder,
                )
            except Exception as failure:
                disagreements.append(failure)
                raise

    try:
        Machine.run()
    except hypothesis.errors.Flaky:
        # What schemathesis' own stateful runner does: a scenario replayed against a
        # server whose state moved on (the account its first run signed up now
        # exists) cannot redraw the same steps, and hypothesis calls that flaky.
        # A disagreement between spec and server found on the way still fails.
        if disagreements:
            raise disagreements[0] from None
    assert any(label.startswith("stateful: ") for label in CASES), "no stateful call was made"


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    """What the fuzzer ran: cases per operation (printed with -s, and written
    to $SWITCHYARD_FUZZ_REPORT when set)."""
    yield
    lines = [f"{CASES[label]:6d}  {label}" for label in sorted(CASES)]
    operations = {label.removeprefix("stateful: ") for label in CASES}
    lines.append(f"{sum(CASES.values()):6d}  cases over {len(operations)} operations")
    print("\n" + "\n".join(lines))
    if report := os.environ.get("SWITCHYARD_FUZZ_REPORT"):
        with Path(report).open("a") as out:
            out.write("\n".join(lines) + "\n")


def _amount_of_the_items(body: Any) -> None:
    """A valid payment's amount is the sum of its lines (a cross-field rule):
    a client knows it, so a positive body gets it where it is in range."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list) or not body["items"]:
        return
    values = [
        (line.get("quantity"), line.get("unit_amount"))
        for line in body["items"]
        if isinstance(line, dict)
    ]
    if all(isinstance(q, int) and isinstance(u, int) for q, u in values):
        total = sum(q * u for q, u in values)
        if 0 < total <= MAX_AMOUNT:
            body["amount"] = total
