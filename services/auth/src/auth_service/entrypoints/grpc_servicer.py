"""AuthService over gRPC: proto in, one use case, proto out.

Domain errors pass through; the kit's interceptor turns them into statuses.
"""

from __future__ import annotations

import grpc
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchyard_kit import CLIENT_ADDRESS_KEY, USER_AGENT_KEY, metadata_value

from auth_service.domain.tokens import IssuedTokens
from auth_service.service_layer.handlers import AuthService, ClientInfo, Login, SignUp

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


def _tokens(tokens: IssuedTokens) -> auth_pb2.Tokens:
    return auth_pb2.Tokens(
        user_id=tokens.user_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
    )


def _client(context: grpc.ServicerContext) -> ClientInfo:
    return ClientInfo(
        address=metadata_value(context, CLIENT_ADDRESS_KEY),
        user_agent=metadata_value(context, USER_AGENT_KEY),
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: AuthService) -> None:
        self._auth = auth

    def SignUp(  # noqa: N802 - the name is the RPC's, from the proto
        self, request: auth_pb2.SignUpRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignUpResponse:
        tokens = self._auth.sign_up(
            SignUp(
                email=request.email,
                password=request.password,
                display_name=request.display_name,
                client=_client(context),
            ),
            time_remaining=context.time_remaining,
        )
        return auth_pb2.SignUpResponse(tokens=_tokens(tokens))

    def Login(  # noqa: N802 - the name is the RPC's, from the proto
        self, request: auth_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> auth_pb2.LoginResponse:
        tokens = self._auth.login(
            Login(email=request.email, password=request.password, client=_client(context))
        )
        return auth_pb2.LoginResponse(tokens=_tokens(tokens))

    def GetJwks(  # noqa: N802 - the name is the RPC's, from the proto
        self, request: auth_pb2.GetJwksRequest, context: grpc.ServicerContext
    ) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(
            keys=[
                auth_pb2.JsonWebKey(
                    kty=key.kty, crv=key.crv, x=key.x, kid=key.kid, alg=key.alg, use=key.use
                )
                for key in self._auth.jwks()
            ]
        )
