"""The domain on its own: money, the state machine, the ledger, idempotency."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from payment_service.domain import ledger
from payment_service.domain.idempotency import check_key, fingerprint
from payment_service.domain.model import (
    TRANSITIONS,
    CreatePayment,
    LineItem,
    Payment,
    PaymentStatus,
    RefundPayment,
    TopUpWallet,
)
from payment_service.domain.money import MAX_AMOUNT, find_currency
from payment_service.service_layer.handlers import decode_page_token, encode_page_token
from switchyard.payment.v1 import payment_pb2
from switchyard_kit import FailedPrecondition, InvalidArgument

NOW = datetime(2025, 1, 1, tzinfo=UTC)

# A fixed id in parametrized cases: pytest-xdist needs the same test ids in
# every worker, so nothing random may appear in them.
A_PAYMENT_ID = "9a5e7949-0b82-4d2c-88b5-564e5729206a"


def _payment(amount: int = 1_000) -> Payment:
    return Payment("p1", "u1", "m1", amount, "EUR", (LineItem("a", 1, amount),), "", NOW, NOW)


def test_currency_exponents_come_from_iso_4217():
    assert find_currency("EUR").exponent == 2
    assert find_currency("JPY").exponent == 0
    assert find_currency("BHD").exponent == 3
    assert find_currency("XAU") is None  # no minor unit
    assert find_currency("eur") is None
    assert find_currency("ZZZ") is None


def test_the_transition_table_is_the_only_way_to_move():
    assert TRANSITIONS[PaymentStatus.PENDING] == {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED}
    failed = _payment()
    failed.fail("INSUFFICIENT_FUNDS", NOW)
    with pytest.raises(FailedPrecondition):
        failed.succeed(NOW)
    with pytest.raises(FailedPrecondition):
        failed.refund(1, NOW)


def test_refunds_move_to_partially_refunded_then_refunded():
    payment = _payment(1_000)
    payment.succeed(NOW)
    payment.refund(400, NOW)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 400)
    with pytest.raises(FailedPrecondition) as too_much:  # what is left is the payment's state
        payment.refund(601, NOW)
    assert too_much.value.reason == "REFUND_EXCEEDS_PAYMENT"
    payment.refund(600, NOW)
    assert payment.status is PaymentStatus.REFUNDED
    with pytest.raises(FailedPrecondition):
        payment.refund(1, NOW)


def test_ledger_transactions_must_balance():
    payment = _payment(500)
    transaction = ledger.payment_transaction(payment)
    assert sum(e.amount for e in transaction.entries) == 0
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.LedgerTransaction(
            "t",
            ledger.TransactionKind.PAYMENT,
            "p",
            (ledger.Entry(ledger.wallet("u", "EUR"), -5), ledger.Entry(ledger.funding("EUR"), 4)),
        )
    assert ledger.wallet("u", "EUR").id == ledger.wallet("u", "EUR").id
    assert ledger.wallet("u", "EUR").id != ledger.wallet("u", "USD").id


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (TopUpWallet("u", 0, "EUR"), "amount"),
        (TopUpWallet("u", MAX_AMOUNT + 1, "EUR"), "amount"),
        (TopUpWallet("u", 5, "XXX"), "currency"),
        (CreatePayment("u", 10, "EUR", "bad merchant!"), "merchant_id"),
        # `^...$` with `match` let a trailing line break through: the match is whole.
        (CreatePayment("u", 10, "EUR", "shop\n"), "merchant_id"),
        (CreatePayment("u", 10, "EUR", "m", description="nul\x00byte"), "description"),
        (CreatePayment("u", 10, "EUR", "m", description="esc\x1b[2J"), "description"),
        (CreatePayment("u", 10, "EUR", "m", description="two\nlines"), "description"),
        (CreatePayment("u", 10, "EUR", "m", description="invoice\u202efdp.exe"), "description"),
        (
            CreatePayment("u", 10, "EUR", "m", (LineItem("<svg onload=alert(1)>", 1, 10),)),
            "items[0].sku",
        ),
        (CreatePayment("u", 10, "EUR", "m", (LineItem("sku\n", 1, 10),)), "items[0].sku"),
        (RefundPayment("u", "\x00"), "payment_id"),
        (RefundPayment("u", "not-a-uuid"), "payment_id"),
        (RefundPayment("u", A_PAYMENT_ID.upper()), "payment_id"),
        (CreatePayment("u", 10, "EUR", "m", (LineItem("a", 2, 4),)), "amount"),
        (
            CreatePayment("u", 10, "EUR", "m", (LineItem("a", 2, MAX_AMOUNT),)),
            "items[0].unit_amount",
        ),
    ],
)
def test_commands_report_field_violations(command, field):
    with pytest.raises(InvalidArgument) as invalid:
        command.validate()
    assert field in {v.field for v in invalid.value.violations}


def test_fingerprints_compare_meaning():
    a = CreatePayment("u", 10, "EUR", "m")
    assert fingerprint("CreatePayment", a) == fingerprint(
        "CreatePayment", CreatePayment("u", 10, "EUR", "m")
    )
    assert fingerprint("CreatePayment", a) != fingerprint(
        "CreatePayment", CreatePayment("u", 11, "EUR", "m")
    )
    assert fingerprint("CreatePayment", a) != fingerprint("TopUpWallet", a)
    with pytest.raises(InvalidArgument):
        check_key("")
    with pytest.raises(InvalidArgument):
        check_key("x" * 256)


def test_valid_commands_pass():
    item = LineItem("tea.earl_grey-250g", 2, 5)
    CreatePayment("u", 10, "EUR", "shop-1", (item,), "Tea for two, ünïcode 👍").validate()
    RefundPayment("u", str(uuid.uuid4())).validate()


def test_page_tokens_are_opaque_and_checked():
    payment_id = str(uuid.uuid4())
    token = encode_page_token(NOW, payment_id)
    assert decode_page_token(token) == (NOW, payment_id)
    with pytest.raises(InvalidArgument):
        decode_page_token("garbage")


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 2500,  # once a RecursionError (500)
        b'{"t": ' + b"[" * 2500 + b"}",
        b'{"t": "2025-01-01T00:00:00+00:00", "i": "\\u0000"}',  # NUL: PostgreSQL refuses it
        b'{"t": "2025-01-01T00:00:00+00:00", "i": "p1"}',
        b'{"t": 1, "i": "' + A_PAYMENT_ID.encode() + b'"}',
        b'{"t": "2025-01-01T00:00:00+00:00", "i": ' + b"9" * 5000 + b"}",
        b"\xff\xfe",
    ],
)
def test_hostile_page_tokens_are_invalid_arguments(raw):
    with pytest.raises(InvalidArgument) as invalid:
        decode_page_token(_token(raw))
    assert {v.field for v in invalid.value.violations} == {"page_token"}


@pytest.mark.parametrize("amount", ["1.5", "1e3x", '"abc"', "true"])
def test_non_integer_json_amounts_never_parse(amount):
    # The gateway parses bodies with json_format: a non-integer is a 400 there.
    with pytest.raises(json_format.ParseError):
        json_format.Parse(
            f'{{"amount": {amount}, "currency": "EUR"}}', payment_pb2.TopUpWalletRequest()
        )


def test_json_int64_accepts_strings_and_numbers():
    for body in ('{"amount": "9007199254740991"}', '{"amount": 9007199254740991}'):
        assert json_format.Parse(body, payment_pb2.TopUpWalletRequest()).amount == MAX_AMOUNT
