import json
import os

import grpc
import pytest
from switchyard.auth.v1 import auth_pb2
from switchyard.payment.v1 import payment_pb2
from switchyard.profile.v1 import profile_pb2
from switchyard_kit import Backend, DeadlineExceeded, outgoing_timeout
from switchyard_kit._channels import service_config

PROFILE = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"]
AUTH = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


def _retried_methods(config: dict) -> set[str]:
    return {
        name["method"]
        for method_config in config["methodConfig"]
        if "retryPolicy" in method_config
        for name in method_config["name"]
    }


def test_only_idempotent_methods_are_retried() -> None:
    config = json.loads(service_config(PROFILE))
    assert _retried_methods(config) == {"CreateProfile", "GetMyProfile", "GetPublicProfile"}
    auth_retried = _retried_methods(json.loads(service_config(AUTH)))
    assert "GetJwks" in auth_retried
    assert not auth_retried & {"SignUp", "Login", "Refresh", "ChangePassword", "RotateSigningKey"}


def test_retries_are_on_unavailable_and_cancelled_only_and_budgeted() -> None:
    config = json.loads(service_config(PROFILE))
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "CANCELLED"]
    assert config["retryThrottling"]["tokenRatio"] > 0
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]


def test_a_channel_is_made_once_per_process_and_lazily() -> None:
    backend = Backend("profile", "127.0.0.1:1", PROFILE)
    assert backend._channel is None
    first = backend.channel()
    assert backend.channel() is first
    backend._pid = os.getpid() + 1  # as if this process were a fork of another
    assert backend.channel() is not first
    backend.close()


class _Context:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.mark.parametrize(("remaining", "cap", "expected"), [(5.0, 1.0, 1.0), (0.3, 1.0, 0.3)])
def test_outgoing_calls_get_what_is_left_of_the_deadline(
    remaining: float, cap: float, expected: float
) -> None:
    context: grpc.ServicerContext = _Context(remaining)  # type: ignore[assignment]
    assert outgoing_timeout(context, cap) == expected


def test_no_call_is_made_past_the_deadline() -> None:
    context: grpc.ServicerContext = _Context(-0.1)  # type: ignore[assignment]
    with pytest.raises(DeadlineExceeded):
        outgoing_timeout(context, 1.0)


def test_writes_made_idempotent_by_their_key_are_retried() -> None:
    payment = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"]
    retried = _retried_methods(json.loads(service_config(payment)))
    assert {"TopUpWallet", "CreatePayment", "RefundPayment"} <= retried
