"""PaymentService over gRPC: proto in, one handler, proto out."""

from __future__ import annotations

import grpc
from switchyard.payment.v1 import payment_pb2, payment_pb2_grpc
from switchyard_kit import IDEMPOTENCY_KEY, caller_user_id, metadata_value
from typing_extensions import override

from payment_service.adapters.proto_codec import (
    items_from_proto,
    payment_to_proto,
    refund_to_proto,
    top_up_to_proto,
)
from payment_service.domain.model import CreatePayment, RefundPayment, TopUpWallet
from payment_service.service_layer.handlers import PaymentHandlers

SERVICE_NAME = payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, handlers: PaymentHandlers) -> None:
        self.handlers = handlers

    @override
    def GetWallet(
        self, request: payment_pb2.GetWalletRequest, context: grpc.ServicerContext
    ) -> payment_pb2.GetWalletResponse:
        user_id = caller_user_id(context)
        balances = self.handlers.get_wallet(user_id)
        return payment_pb2.GetWalletResponse(
            wallet=payment_pb2.Wallet(
                user_id=user_id,
                balances=[payment_pb2.Balance(currency=c, amount=a) for c, a in balances],
            )
        )

    @override
    def TopUpWallet(
        self, request: payment_pb2.TopUpWalletRequest, context: grpc.ServicerContext
    ) -> payment_pb2.TopUpWalletResponse:
        command = TopUpWallet(
            user_id=caller_user_id(context), amount=request.amount, currency=request.currency
        )
        top_up = self.handlers.top_up(command, metadata_value(context, IDEMPOTENCY_KEY))
        return payment_pb2.TopUpWalletResponse(top_up=top_up_to_proto(top_up))

    @override
    def CreatePayment(
        self, request: payment_pb2.CreatePaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.CreatePaymentResponse:
        command = CreatePayment(
            user_id=caller_user_id(context),
            amount=request.amount,
            currency=request.currency,
            merchant_id=request.merchant_id,
            items=items_from_proto(request.items),
            description=request.description,
        )
        payment = self.handlers.create_payment(command, metadata_value(context, IDEMPOTENCY_KEY))
        return payment_pb2.CreatePaymentResponse(payment=payment_to_proto(payment))

    @override
    def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.GetPaymentResponse:
        payment = self.handlers.get_payment(caller_user_id(context), request.payment_id)
        return payment_pb2.GetPaymentResponse(payment=payment_to_proto(payment))

    @override
    def ListPayments(
        self, request: payment_pb2.ListPaymentsRequest, context: grpc.ServicerContext
    ) -> payment_pb2.ListPaymentsResponse:
        payments, token = self.handlers.list_payments(
            caller_user_id(context), request.page_size, request.page_token
        )
        return payment_pb2.ListPaymentsResponse(
            payments=[payment_to_proto(p) for p in payments], next_page_token=token
        )

    @override
    def RefundPayment(
        self, request: payment_pb2.RefundPaymentRequest, context: grpc.ServicerContext
    ) -> payment_pb2.RefundPaymentResponse:
        command = RefundPayment(
            user_id=caller_user_id(context),
            payment_id=request.payment_id,
            amount=request.amount if request.HasField("amount") else None,
            currency=request.currency,
        )
        result = self.handlers.refund(command, metadata_value(context, IDEMPOTENCY_KEY))
        return payment_pb2.RefundPaymentResponse(
            refund=refund_to_proto(result.refund), payment=payment_to_proto(result.payment)
        )
