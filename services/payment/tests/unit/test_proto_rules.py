"""The payment protos' currency rule is the domain's ISO 4217 table, code for code."""

import itertools
import string

import pytest
from buf.validate import validate_pb2
from payment_service.domain.money import find_currency
from switchyard.payment.v1 import payment_pb2


@pytest.mark.parametrize(
    "message",
    [
        payment_pb2.TopUpWalletRequest,
        payment_pb2.CreatePaymentRequest,
        payment_pb2.RefundPaymentRequest,
    ],
)
def test_the_proto_currency_list_is_the_domain_one(message: type) -> None:
    field = message.DESCRIPTOR.fields_by_name["currency"]
    listed = set(field.GetOptions().Extensions[validate_pb2.field].string.__getattribute__("in"))
    taken = {
        code
        for code in (
            "".join(letters) for letters in itertools.product(string.ascii_uppercase, repeat=3)
        )
        if find_currency(code) is not None
    }
    assert listed == taken
