"""AuthService over gRPC: proto in, one use case, proto out.

Domain errors pass through; the kit's interceptor turns them into statuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchyard.auth.v1 import auth_pb2, auth_pb2_grpc
from switchyard_kit import (
    CLIENT_ADDRESS_KEY,
    SESSION_ID_KEY,
    USER_AGENT_KEY,
    caller_user_id,
    metadata_value,
)
from typing_extensions import override

from auth_service.domain.model import Session
from auth_service.domain.tokens import IssuedTokens
from auth_service.service_layer.handlers import (
    AuthService,
    Caller,
    ChangePassword,
    ClientInfo,
    Login,
    Refresh,
    SignUp,
)
from auth_service.service_layer.keys import KeyRing

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name

# The `sid` of the caller's verified access token, put there by the gateway
# beside x-switchyard-user-id (not in the kit yet: only auth reads it).


def _tokens(tokens: IssuedTokens) -> auth_pb2.Tokens:
    return auth_pb2.Tokens(
        user_id=tokens.user_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
    )


def _timestamp(value: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp


def _client(context: grpc.ServicerContext) -> ClientInfo:
    return ClientInfo(
        address=metadata_value(context, CLIENT_ADDRESS_KEY),
        user_agent=metadata_value(context, USER_AGENT_KEY),
    )


def _caller(context: grpc.ServicerContext) -> Caller:
    return Caller(
        user_id=caller_user_id(context),
        session_id=metadata_value(context, SESSION_ID_KEY),
        client=_client(context),
    )


def _session(session: Session, current: str | None) -> auth_pb2.Session:
    return auth_pb2.Session(
        session_id=session.id,
        create_time=_timestamp(session.created_at),
        last_used_time=_timestamp(session.last_used_at or session.created_at),
        expire_time=_timestamp(session.expires_at),
        user_agent=session.user_agent or "",
        client_address=session.client_address or "",
        current=session.id == current,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: AuthService, keys: KeyRing, token_lifetime_seconds: int) -> None:
        self._auth = auth
        self._keys = keys
        self._token_lifetime = token_lifetime_seconds

    @override
    def SignUp(
        self, request: auth_pb2.SignUpRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SignUpResponse:
        tokens = self._auth.sign_up(
            SignUp(
                email=request.email,
                password=request.password,
                display_name=request.display_name,
                client=_client(context),
            )
        )
        return auth_pb2.SignUpResponse(tokens=_tokens(tokens))

    @override
    def Login(
        self, request: auth_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> auth_pb2.LoginResponse:
        tokens = self._auth.login(
            Login(email=request.email, password=request.password, client=_client(context))
        )
        return auth_pb2.LoginResponse(tokens=_tokens(tokens))

    @override
    def Refresh(
        self, request: auth_pb2.RefreshRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RefreshResponse:
        tokens = self._auth.refresh(Refresh(request.refresh_token, client=_client(context)))
        return auth_pb2.RefreshResponse(tokens=_tokens(tokens))

    @override
    def Logout(
        self, request: auth_pb2.LogoutRequest, context: grpc.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        self._auth.logout(_caller(context), request.refresh_token)
        return auth_pb2.LogoutResponse()

    @override
    def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListSessionsResponse:
        caller = _caller(context)
        return auth_pb2.ListSessionsResponse(
            sessions=[
                _session(session, caller.session_id) for session in self._auth.list_sessions(caller)
            ]
        )

    @override
    def RevokeSession(
        self, request: auth_pb2.RevokeSessionRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RevokeSessionResponse:
        self._auth.revoke_session(_caller(context), request.session_id)
        return auth_pb2.RevokeSessionResponse()

    @override
    def RevokeOtherSessions(
        self, request: auth_pb2.RevokeOtherSessionsRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RevokeOtherSessionsResponse:
        count = self._auth.revoke_other_sessions(_caller(context))
        return auth_pb2.RevokeOtherSessionsResponse(revoked_count=count)

    @override
    def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        self._auth.change_password(
            _caller(context),
            ChangePassword(
                current_password=request.current_password, new_password=request.new_password
            ),
        )
        return auth_pb2.ChangePasswordResponse()

    @override
    def ListRevokedSessions(
        self, request: auth_pb2.ListRevokedSessionsRequest, context: grpc.ServicerContext
    ) -> auth_pb2.ListRevokedSessionsResponse:
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        sessions, as_of = self._auth.revoked_sessions(since)
        return auth_pb2.ListRevokedSessionsResponse(
            sessions=[
                auth_pb2.RevokedSession(
                    session_id=session.id, revoke_time=_timestamp(session.revoked_at)
                )
                for session in sessions
                if session.revoked_at is not None
            ],
            as_of=_timestamp(as_of),
        )

    @override
    def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RotateSigningKeyResponse:
        rotation = self._keys.rotate(timedelta(seconds=self._token_lifetime))
        return auth_pb2.RotateSigningKeyResponse(
            kid=rotation.kid,
            previous_kids=rotation.previous_kids,
            retire_time=_timestamp(rotation.retire_at),
        )

    @override
    def GetJwks(
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
