"""ProfileService over gRPC: proto in -> one handler -> proto out.

Domain errors raised by handlers become gRPC statuses in the kit's server
interceptor; nothing here decides a business rule.
"""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from switchyard.profile.v1 import profile_pb2, profile_pb2_grpc
from switchyard_kit import caller_user_id
from typing_extensions import override

from profile_service.domain.model import Profile, ProfileDraft, PublicProfile
from profile_service.service_layer.handlers import ProfileHandlers

SERVICE_NAME: str = profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name


def _timestamp(value: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp


def profile_to_proto(profile: Profile) -> profile_pb2.Profile:
    return profile_pb2.Profile(
        user_id=profile.user_id,
        display_name=profile.display_name,
        bio=profile.bio,
        avatar_url=profile.avatar_url,
        locale=profile.locale,
        preferences=profile.preferences,
        create_time=_timestamp(profile.create_time),
        update_time=_timestamp(profile.update_time),
    )


def public_profile_to_proto(profile: PublicProfile) -> profile_pb2.PublicProfile:
    return profile_pb2.PublicProfile(
        user_id=profile.user_id,
        display_name=profile.display_name,
        bio=profile.bio,
        avatar_url=profile.avatar_url,
    )


def draft_from_proto(profile: profile_pb2.Profile) -> ProfileDraft:
    return ProfileDraft(
        display_name=profile.display_name,
        bio=profile.bio,
        avatar_url=profile.avatar_url,
        locale=profile.locale,
        preferences=dict(profile.preferences),
    )


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, handlers: ProfileHandlers) -> None:
        self.handlers = handlers

    @override
    def CreateProfile(
        self, request: profile_pb2.CreateProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.CreateProfileResponse:
        profile = self.handlers.create_profile(request.user_id, request.display_name)
        return profile_pb2.CreateProfileResponse(profile=profile_to_proto(profile))

    @override
    def GetMyProfile(
        self, request: profile_pb2.GetMyProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.GetMyProfileResponse:
        profile = self.handlers.get_my_profile(caller_user_id(context))
        return profile_pb2.GetMyProfileResponse(profile=profile_to_proto(profile))

    @override
    def UpdateMyProfile(
        self, request: profile_pb2.UpdateMyProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.UpdateMyProfileResponse:
        profile = self.handlers.update_my_profile(
            caller_user_id(context),
            draft_from_proto(request.profile),
            list(request.update_mask.paths),
        )
        return profile_pb2.UpdateMyProfileResponse(profile=profile_to_proto(profile))

    @override
    def GetPublicProfile(
        self, request: profile_pb2.GetPublicProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.GetPublicProfileResponse:
        profile = self.handlers.get_public_profile(request.user_id)
        return profile_pb2.GetPublicProfileResponse(profile=public_profile_to_proto(profile))
