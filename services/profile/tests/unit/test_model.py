"""The Profile entity, CreateProfile inputs and update masks."""

from datetime import UTC, datetime, timedelta

import pytest
from profile_service.domain.model import (
    Profile,
    ProfileDraft,
    ProfileUpdate,
    default_display_name,
    new_profile,
    parse_update,
    parse_update_mask,
    parse_user_id,
)
from switchyard_kit import FieldViolation, InvalidArgument

USER = "3f2a6c1e-9b7d-4c1a-8e2f-0a1b2c3d4e5f"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_profile() -> Profile:
    profile = Profile.new(USER, "Ada", NOW)
    profile.bio = "mathematician"
    profile.preferences = {"theme": "dark"}
    return profile


class TestUpdateMask:
    @pytest.mark.parametrize(
        "paths",
        [
            ["display_name"],
            ["bio", "avatar_url"],
            ["display_name", "bio", "avatar_url", "locale", "preferences"],
            ["bio", "bio"],
        ],
    )
    def test_allowed_paths(self, paths: list[str]) -> None:
        assert parse_update_mask(paths) == frozenset(paths)

    def test_empty_mask_is_refused(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            parse_update_mask([])
        assert [v.field for v in caught.value.violations] == ["update_mask"]

    @pytest.mark.parametrize(
        ("path", "says"),
        [
            ("user_id", "output only"),
            ("create_time", "output only"),
            ("update_time", "output only"),
            ("email", "not a field"),
            ("preferences.theme", "not a field"),
            ("*", "not a field"),
            ("displayName", "not a field"),
            ("", "not a field"),
        ],
    )
    def test_refused_paths_are_named(self, path: str, says: str) -> None:
        with pytest.raises(InvalidArgument) as caught:
            parse_update_mask(["bio", path])
        [violation] = caught.value.violations
        assert violation.field == "update_mask"
        assert f'"{path}"' in violation.description
        assert says in violation.description
        assert path in caught.value.message

    def test_every_refused_path_is_reported(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            parse_update_mask(["user_id", "email", "bio"])
        assert len(caught.value.violations) == 2


class TestParseUpdate:
    def test_only_masked_fields_are_taken(self) -> None:
        draft = ProfileDraft(display_name="  Grace ", bio="ignored", locale="pt-br")
        update = parse_update(draft, ["display_name", "locale"])
        assert update == ProfileUpdate(display_name="Grace", locale="pt-BR")
        assert update.fields == ["display_name", "locale"]

    def test_fields_outside_the_mask_are_not_validated(self) -> None:
        draft = ProfileDraft(bio="ok", avatar_url="http://insecure", locale="en_US")
        assert parse_update(draft, ["bio"]) == ProfileUpdate(bio="ok")

    def test_masked_empty_values_clear_fields(self) -> None:
        update = parse_update(ProfileDraft(), ["bio", "avatar_url", "locale", "preferences"])
        assert update == ProfileUpdate(bio="", avatar_url="", locale="", preferences={})

    def test_masked_empty_display_name_is_refused(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            parse_update(ProfileDraft(display_name="   "), ["display_name"])
        assert caught.value.violations == [FieldViolation("display_name", "must not be empty")]

    def test_all_violations_are_reported_at_once(self) -> None:
        draft = ProfileDraft(
            display_name="x" * 65,
            bio="x" * 501,
            avatar_url="http://example.com/a.png",
            locale="en_US",
            preferences={"bad key": "v"},
        )
        with pytest.raises(InvalidArgument) as caught:
            parse_update(draft, ["display_name", "bio", "avatar_url", "locale", "preferences"])
        assert [v.field for v in caught.value.violations] == [
            "display_name",
            "bio",
            "avatar_url",
            "locale",
            "preferences",
        ]

    def test_mask_errors_come_before_field_errors(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            parse_update(ProfileDraft(bio="x" * 501), ["bio", "user_id"])
        assert [v.field for v in caught.value.violations] == ["update_mask"]


class TestProfile:
    def test_apply_changes_only_the_update_fields(self) -> None:
        profile = make_profile()
        profile.apply(ProfileUpdate(display_name="Grace"), NOW + timedelta(seconds=5))
        assert profile.display_name == "Grace"
        assert profile.bio == "mathematician"
        assert profile.preferences == {"theme": "dark"}
        assert profile.create_time == NOW
        assert profile.update_time == NOW + timedelta(seconds=5)

    def test_preferences_are_replaced_whole(self) -> None:
        profile = make_profile()
        profile.apply(ProfileUpdate(preferences={"lang": "en"}), NOW)
        assert profile.preferences == {"lang": "en"}

    def test_update_time_increases_even_if_the_clock_does_not(self) -> None:
        profile = make_profile()
        profile.apply(ProfileUpdate(bio="a"), NOW)
        first = profile.update_time
        profile.apply(ProfileUpdate(bio="b"), NOW - timedelta(hours=1))
        assert NOW < first < profile.update_time

    def test_public_view_has_only_public_fields(self) -> None:
        public = make_profile().public()
        assert set(vars(public)) == {"user_id", "display_name", "bio", "avatar_url"}


class TestNewProfile:
    def test_valid(self) -> None:
        profile = new_profile(USER.upper(), "  Ada ", NOW)
        assert (profile.user_id, profile.display_name) == (USER, "Ada")
        assert profile.create_time == profile.update_time == NOW
        assert (profile.bio, profile.avatar_url, profile.locale, profile.preferences) == (
            "",
            "",
            "",
            {},
        )

    @pytest.mark.parametrize("name", ["", "   "])
    def test_missing_display_name_gets_a_default(self, name: str) -> None:
        profile = new_profile(USER, name, NOW)
        assert profile.display_name == default_display_name(USER) == "user-3f2a6c1e"

    def test_invalid_inputs_are_all_reported(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            new_profile("not-a-uuid", "x" * 65, NOW)
        assert [v.field for v in caught.value.violations] == ["user_id", "display_name"]

    def test_parse_user_id(self) -> None:
        assert parse_user_id(USER.upper()) == USER
        with pytest.raises(InvalidArgument) as caught:
            parse_user_id("nope")
        assert caught.value.violations[0].field == "user_id"
