"""ProfileService through a real server and channel, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard.profile.v1 import profile_pb2
from switchyard_kit import status_details

from .conftest import Server


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = status_details(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    return [(v.field, v.description) for v in bad_request.field_violations]


def create(server: Server, user_id: str, name: str = "Ada") -> profile_pb2.Profile:
    request = profile_pb2.CreateProfileRequest(user_id=user_id, display_name=name)
    return server.stub.CreateProfile(request, timeout=10).profile


def get_mine(server: Server, user_id: str) -> profile_pb2.Profile:
    request = profile_pb2.GetMyProfileRequest()
    return server.stub.GetMyProfile(request, metadata=server.caller(user_id), timeout=10).profile


def update_mine(
    server: Server, user_id: str, paths: list[str], **fields: object
) -> profile_pb2.Profile:
    request = profile_pb2.UpdateMyProfileRequest(
        profile=profile_pb2.Profile(**fields),  # type: ignore[arg-type]
        update_mask=FieldMask(paths=paths),
    )
    return server.stub.UpdateMyProfile(request, metadata=server.caller(user_id), timeout=10).profile


def test_ready_when_the_database_answers(server: Server) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    for name in ("", "switchyard.profile.v1.ProfileService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_create_is_idempotent(server: Server, user_id: str) -> None:
    first = create(server, user_id, "Ada")
    again = create(server, user_id, "Somebody Else")
    assert again == first
    assert first.user_id == user_id
    assert first.display_name == "Ada"
    assert first.create_time == first.update_time
    assert first.create_time.seconds > 0
    assert server.sql("SELECT count(*) FROM profiles WHERE user_id = :u", u=user_id)[0][0] == 1


def test_concurrent_creates_make_one_row(server: Server, user_id: str) -> None:
    start = threading.Barrier(20)

    def create_after_barrier(index: int) -> profile_pb2.Profile:
        start.wait(timeout=10)
        return create(server, user_id, f"Racer {index}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        profiles = list(pool.map(create_after_barrier, range(20)))
    assert all(profile == profiles[0] for profile in profiles)
    assert server.sql("SELECT count(*) FROM profiles WHERE user_id = :u", u=user_id)[0][0] == 1
    [(stored_name,)] = server.sql("SELECT display_name FROM profiles WHERE user_id = :u", u=user_id)
    assert stored_name == profiles[0].display_name


def test_create_refuses_bad_input(server: Server) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        create(server, "not-a-uuid", "x" * 65)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(caught.value)} == {"user_id", "display_name"}
    assert server.sql("SELECT count(*) FROM profiles")[0][0] == 0


def test_get_my_profile_creates_a_missing_one(server: Server, user_id: str) -> None:
    profile = get_mine(server, user_id)
    assert profile.user_id == user_id
    assert profile.display_name == f"user-{user_id[:8]}"
    assert get_mine(server, user_id) == profile
    assert server.sql("SELECT count(*) FROM profiles WHERE user_id = :u", u=user_id)[0][0] == 1


def test_update_changes_only_masked_fields(server: Server, user_id: str) -> None:
    created = create(server, user_id, "Ada")
    updated = update_mine(
        server,
        user_id,
        ["bio", "locale", "preferences"],
        display_name="Not In Mask",
        bio="Analyst",
        avatar_url="https://not.in/mask.png",
        locale="en-gb",
        preferences={"theme": "dark", "ui.density": "compact"},
    )
    assert updated.display_name == "Ada"
    assert updated.avatar_url == ""
    assert (updated.bio, updated.locale) == ("Analyst", "en-GB")
    assert dict(updated.preferences) == {"theme": "dark", "ui.density": "compact"}
    assert updated.create_time == created.create_time
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()
    assert get_mine(server, user_id) == updated

    renamed = update_mine(server, user_id, ["display_name"], display_name="  Grace  ")
    assert renamed.display_name == "Grace"
    assert dict(renamed.preferences) == {"theme": "dark", "ui.density": "compact"}


@pytest.mark.parametrize(
    ("paths", "fields", "bad_fields"),
    [
        (
            ["display_name", "avatar_url"],
            {"display_name": "After", "avatar_url": "javascript:alert(1)"},
            {"profile.avatar_url"},
        ),
        (["bio"], {"bio": "x" * 501}, {"profile.bio"}),
        (["locale"], {"locale": "en_US"}, {"profile.locale"}),
        (["locale"], {"locale": "en-US-fonipa-fonipa"}, {"profile.locale"}),
        (["preferences"], {"preferences": {"bad key": "v"}}, {'profile.preferences["bad key"]'}),
        (["display_name", "user_id"], {"display_name": "After"}, {"update_mask"}),
        (["display_name", "nickname"], {"display_name": "After"}, {"update_mask"}),
        ([], {"display_name": "After"}, {"update_mask"}),
    ],
)
def test_invalid_update_is_refused_and_changes_nothing(
    server: Server,
    user_id: str,
    paths: list[str],
    fields: dict[str, object],
    bad_fields: set[str],
) -> None:
    before = create(server, user_id, "Before")
    with pytest.raises(grpc.RpcError) as caught:
        update_mine(server, user_id, paths, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert {field for field, _ in violations} == bad_fields
    for path in set(paths) - {"display_name", "bio", "avatar_url", "locale", "preferences"}:
        assert any(path in description for _, description in violations)
    assert get_mine(server, user_id) == before


def test_public_view_hides_private_fields(server: Server, user_id: str) -> None:
    create(server, user_id, "Grace Hopper")
    update_mine(
        server,
        user_id,
        ["bio", "avatar_url", "locale", "preferences"],
        bio="Compilers",
        avatar_url="https://example.com/grace.png",
        locale="en-US",
        preferences={"secret_hobby": "chess"},
    )
    viewer = str(uuid.uuid4())
    response = server.stub.GetPublicProfile(
        profile_pb2.GetPublicProfileRequest(user_id=user_id),
        metadata=server.caller(viewer),
        timeout=10,
    )
    assert response.profile == profile_pb2.PublicProfile(
        user_id=user_id,
        display_name="Grace Hopper",
        bio="Compilers",
        avatar_url="https://example.com/grace.png",
    )
    assert set(profile_pb2.PublicProfile.DESCRIPTOR.fields_by_name) == {
        "user_id",
        "display_name",
        "bio",
        "avatar_url",
    }


def test_unknown_public_profile_is_not_found(server: Server, user_id: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.GetPublicProfile(
            profile_pb2.GetPublicProfileRequest(user_id=user_id), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert server.sql("SELECT count(*) FROM profiles")[0][0] == 0


@pytest.mark.parametrize("bad_id", ["", "42", "../../etc/passwd", "' OR 1=1 --"])
def test_malformed_public_user_id_is_invalid(server: Server, bad_id: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.GetPublicProfile(
            profile_pb2.GetPublicProfileRequest(user_id=bad_id), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(caught.value)] == ["user_id"]


@pytest.mark.parametrize("method", ["GetMyProfile", "UpdateMyProfile"])
@pytest.mark.parametrize("metadata", [(), (("x-switchyard-user-id", ""),)])
def test_own_profile_needs_a_caller(
    server: Server, method: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    request = (
        profile_pb2.GetMyProfileRequest()
        if method == "GetMyProfile"
        else profile_pb2.UpdateMyProfileRequest(
            profile=profile_pb2.Profile(bio="x"), update_mask=FieldMask(paths=["bio"])
        )
    )
    with pytest.raises(grpc.RpcError) as caught:
        getattr(server.stub, method)(request, metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.sql("SELECT count(*) FROM profiles")[0][0] == 0
