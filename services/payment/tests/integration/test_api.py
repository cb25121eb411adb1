"""PaymentService through a real gRPC server on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import grpc
import pytest
from payment_service.adapters import tables as t
from payment_service.entrypoints.app import reconcile_database
from sqlalchemy import func, select
from switchyard.payment.v1 import payment_pb2

MAX = 2**53 - 1


def _count(database, table) -> int:
    with database.session() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_top_up_pay_refund_in_parts(client, database, user):
    top_up = client.top_up(user, 10_000, "EUR")
    assert (top_up.amount, top_up.currency, top_up.balance) == (10_000, "EUR", 10_000)
    payment = client.pay(user, 2_500, items=[("sku-1", 2, 1_000), ("sku-2", 1, 500)])
    assert payment.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED
    assert [(i.sku, i.quantity, i.unit_amount) for i in payment.items] == [
        ("sku-1", 2, 1_000),
        ("sku-2", 1, 500),
    ]
    assert client.balances(user) == {"EUR": 7_500}

    first = client.refund(user, payment.id, 1_000)
    assert first.refund.amount == 1_000
    assert first.payment.status == payment_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED
    rest = client.refund(user, payment.id)  # no amount: everything left
    assert rest.refund.amount == 1_500
    assert rest.payment.status == payment_pb2.PAYMENT_STATUS_REFUNDED
    assert rest.payment.refunded_amount == 2_500
    assert client.balances(user) == {"EUR": 10_000}
    assert client.get(user, payment.id).status == payment_pb2.PAYMENT_STATUS_REFUNDED
    assert _count(database, t.outbox) == 4  # top-up, payment, two refunds
    assert reconcile_database(database) == []


def test_refund_never_exceeds_the_payment(client, user, rpc_error):
    client.top_up(user, 1_000)
    payment = client.pay(user, 600)
    with pytest.raises(grpc.RpcError) as too_much:
        client.refund(user, payment.id, 601)
    # What is left to refund is the payment's state: FAILED_PRECONDITION.
    code, reason, _ = rpc_error(too_much.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_EXCEEDS_PAYMENT")
    client.refund(user, payment.id, 600)
    with pytest.raises(grpc.RpcError) as again:
        client.refund(user, payment.id, 1)
    assert rpc_error(again.value)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PAYMENT_NOT_REFUNDABLE",
    )
    assert client.balances(user) == {"EUR": 1_000}


def test_insufficient_funds_records_a_failed_payment_and_moves_nothing(
    client, database, user, rpc_error
):
    client.top_up(user, 500)
    transactions = _count(database, t.ledger_transactions)
    key = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as first:
        client.pay(user, 501, key=key)
    code, reason, _ = rpc_error(first.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    assert client.balances(user) == {"EUR": 500}
    assert _count(database, t.ledger_transactions) == transactions
    listed = client.stub.ListPayments(
        payment_pb2.ListPaymentsRequest(), metadata=client.metadata(user, None)
    ).payments
    assert [(p.status, p.failure_reason) for p in listed] == [
        (payment_pb2.PAYMENT_STATUS_FAILED, "INSUFFICIENT_FUNDS")
    ]
    # The same key replays the same failure; it does not try again.
    client.top_up(user, 1_000)
    with pytest.raises(grpc.RpcError) as replay:
        client.pay(user, 501, key=key)
    assert replay.value.details() == first.value.details()
    assert rpc_error(replay.value)[1] == "INSUFFICIENT_FUNDS"
    assert reconcile_database(database) == []


def test_same_key_same_body_replays_the_first_response(client, database, user):
    client.top_up(user, 1_000)
    key = str(uuid.uuid4())
    first = client.pay(user, 300, key=key)
    second = client.pay(user, 300, key=key)
    assert second.SerializeToString() == first.SerializeToString()
    assert client.balances(user) == {"EUR": 700}
    # Keys are per caller: another user's identical key is a new request.
    other = str(uuid.uuid4())
    client.top_up(other, 1_000)
    assert client.pay(other, 300, key=key).id != first.id


def test_same_key_different_body_is_refused_and_moves_nothing(client, database, user, rpc_error):
    client.top_up(user, 1_000)
    key = str(uuid.uuid4())
    client.pay(user, 300, key=key)
    transactions = _count(database, t.ledger_transactions)
    with pytest.raises(grpc.RpcError) as reused:
        client.pay(user, 301, key=key)
    assert rpc_error(reused.value)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )
    with pytest.raises(grpc.RpcError) as other_method:
        client.top_up(user, 300, key=key)
    assert rpc_error(other_method.value)[1] == "IDEMPOTENCY_KEY_REUSED"
    assert client.balances(user) == {"EUR": 700}
    assert _count(database, t.ledger_transactions) == transactions


def test_writes_need_an_idempotency_key(client, user, rpc_error):
    with pytest.raises(grpc.RpcError) as missing:
        client.top_up(user, 100, key=None)
    code, _, fields = rpc_error(missing.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Idempotency-Key" in fields


def test_writes_need_a_caller(client):
    with pytest.raises(grpc.RpcError) as anonymous:
        client.stub.GetWallet(payment_pb2.GetWalletRequest(), timeout=5)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        (0, "EUR", "amount"),
        (-5, "EUR", "amount"),
        (MAX + 1, "EUR", "amount"),
        (2**63 - 1, "EUR", "amount"),
        (100, "XYZ", "currency"),
        (100, "eur", "currency"),
        (100, "", "currency"),
        (100, "XAU", "currency"),  # gold has no minor unit: not money here
    ],
)
def test_invalid_top_ups_are_400_with_field_errors(
    client, database, user, rpc_error, *, amount, currency, field
):
    with pytest.raises(grpc.RpcError) as invalid:
        client.top_up(user, amount, currency)
    code, _, fields = rpc_error(invalid.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in fields
    assert client.balances(user) == {}
    assert _count(database, t.idempotency_keys) == 0


@pytest.mark.parametrize(
    ("amount", "currency", "items", "field"),
    [
        (0, "EUR", [], "amount"),
        (-1, "EUR", [], "amount"),
        (MAX + 1, "EUR", [], "amount"),
        (100, "ABC", [], "currency"),
        (100, "EUR", [("a", 1, 99)], "amount"),  # items do not add up
        (100, "EUR", [("a", 0, 100)], "items[0].quantity"),
        (100, "EUR", [("", 1, 100)], "items[0].sku"),
        (100, "EUR", [("a", 1, -100)], "items[0].unit_amount"),
    ],
)
def test_invalid_payments_are_400_with_field_errors(
    client, database, user, rpc_error, *, amount, currency, items, field
):
    client.top_up(user, 1_000)
    with pytest.raises(grpc.RpcError) as invalid:
        client.pay(user, amount, currency, items=items)
    code, _, fields = rpc_error(invalid.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in fields, fields
    assert client.balances(user) == {"EUR": 1_000}
    assert _count(database, t.payments) == 0


def test_paying_from_a_currency_the_wallet_does_not_hold_is_a_failed_precondition(
    client, database, user, rpc_error
):
    """A valid request the wallet's state refuses (a USD top-up makes it succeed)."""
    client.top_up(user, 1_000)
    with pytest.raises(grpc.RpcError) as refused:
        client.pay(user, 100, "USD")
    code, reason, _ = rpc_error(refused.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_WALLET")
    assert client.balances(user) == {"EUR": 1_000}
    assert _count(database, t.payments) == 0


def test_refund_currency_must_match_the_payment(client, user, rpc_error):
    client.top_up(user, 1_000)
    payment = client.pay(user, 100)
    with pytest.raises(grpc.RpcError) as mismatch:
        client.refund(user, payment.id, 50, currency="USD")
    # The payment's currency is its state: the same request suits a USD payment.
    assert rpc_error(mismatch.value)[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CURRENCY_MISMATCH",
    )
    with pytest.raises(grpc.RpcError) as zero:
        client.refund(user, payment.id, 0)
    assert "amount" in rpc_error(zero.value)[2]


def test_balances_may_not_pass_the_json_safe_limit(client, user, rpc_error):
    client.top_up(user, MAX)
    with pytest.raises(grpc.RpcError) as over:
        client.top_up(user, 1)
    assert rpc_error(over.value)[1] == "BALANCE_LIMIT_EXCEEDED"
    assert client.balances(user) == {"EUR": MAX}


def test_currency_exponents_come_from_iso_4217(client, user):
    client.top_up(user, 1_000, "JPY")  # exponent 0
    client.top_up(user, 1_000, "BHD")  # exponent 3
    assert client.balances(user) == {"BHD": 1_000, "JPY": 1_000}


def test_someone_elses_payment_is_not_found(client, user, rpc_error):
    client.top_up(user, 1_000)
    payment = client.pay(user, 100)
    stranger = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as lookup:
        client.get(stranger, payment.id)
    assert lookup.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refund:
        client.refund(stranger, payment.id)
    assert refund.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as unknown:
        client.get(user, str(uuid.uuid4()))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_payments_are_listed_newest_first_in_pages(client, user, rpc_error):
    client.top_up(user, 10_000)
    made = [client.pay(user, 100 + n).id for n in range(7)]
    seen, token = [], ""
    while True:
        page = client.stub.ListPayments(
            payment_pb2.ListPaymentsRequest(page_size=3, page_token=token),
            metadata=client.metadata(user, None),
        )
        seen.extend(p.id for p in page.payments)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))
    with pytest.raises(grpc.RpcError) as bad_token:
        client.stub.ListPayments(
            payment_pb2.ListPaymentsRequest(page_token="not-a-token"),
            metadata=client.metadata(user, None),
        )
    assert "page_token" in rpc_error(bad_token.value)[2]
    other = client.stub.ListPayments(
        payment_pb2.ListPaymentsRequest(), metadata=client.metadata(str(uuid.uuid4()), None)
    )
    assert list(other.payments) == []
