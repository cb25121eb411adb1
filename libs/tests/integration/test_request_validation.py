"""The server interceptor checks every request against its proto's buf.validate
rules before the handler runs, and reports what is broken as BadRequest field
violations with the paths clients know."""

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from switchyard.payment.v1 import payment_pb2
from switchyard_kit import status_details
from switchyard_kit._interceptor import ServiceInterceptor

METHOD = "/switchyard.test.Example/CreatePayment"


@pytest.fixture
def seen() -> list[payment_pb2.CreatePaymentRequest]:
    return []


@pytest.fixture
def channel(seen: list[payment_pb2.CreatePaymentRequest]) -> Iterator[grpc.Channel]:
    def create(
        request: payment_pb2.CreatePaymentRequest, _context: grpc.ServicerContext
    ) -> payment_pb2.CreatePaymentResponse:
        seen.append(request)
        return payment_pb2.CreatePaymentResponse()

    handler = grpc.method_handlers_generic_handler(
        "switchyard.test.Example",
        {
            "CreatePayment": grpc.unary_unary_rpc_method_handler(
                create,
                request_deserializer=payment_pb2.CreatePaymentRequest.FromString,
                response_serializer=payment_pb2.CreatePaymentResponse.SerializeToString,
            )
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), interceptors=[ServiceInterceptor("example")]
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as open_channel:
        yield open_channel
    server.stop(None)


def _call(channel: grpc.Channel, request: payment_pb2.CreatePaymentRequest) -> object:
    call = channel.unary_unary(
        METHOD,
        request_serializer=payment_pb2.CreatePaymentRequest.SerializeToString,
        response_deserializer=payment_pb2.CreatePaymentResponse.FromString,
    )
    return call(request, timeout=5)


VALID = payment_pb2.CreatePaymentRequest(
    amount=300,
    currency="EUR",
    merchant_id="coffee-shop",
    items=[payment_pb2.LineItem(sku="tea", quantity=3, unit_amount=100)],
    description="three teas",
)


def test_a_valid_request_reaches_the_handler_untouched(
    channel: grpc.Channel, seen: list[payment_pb2.CreatePaymentRequest]
) -> None:
    _call(channel, VALID)
    assert seen == [VALID]


def test_broken_rules_become_field_violations_and_the_handler_never_runs(
    channel: grpc.Channel, seen: list[payment_pb2.CreatePaymentRequest]
) -> None:
    request = payment_pb2.CreatePaymentRequest()
    request.CopyFrom(VALID)
    request.amount = 0
    request.items[0].quantity = 0
    request.description = "line one\nline two"

    with pytest.raises(grpc.RpcError) as raised:
        _call(channel, request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_details(raised.value)
    assert status is not None
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    violations = {v.field: v.description for v in bad_request.field_violations}
    assert violations == {
        "amount": "must be greater than 0 and less than or equal to 9007199254740991",
        "items[0].quantity": "must be greater than or equal to 1 and less than or equal to 1000000",
        "description": "must not contain control characters or line breaks",
    }
    assert seen == []
