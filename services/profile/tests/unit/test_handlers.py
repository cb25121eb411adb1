"""The use cases on fakes: idempotent creation, lazy creation, masked updates, the cache."""

import copy
import uuid

import pytest
from profile_service.adapters.cache import cache_key, decode_profile
from profile_service.domain.model import ProfileDraft
from profile_service.service_layer.handlers import ProfileHandlers
from switchyard_kit import InProcessCache, InvalidArgument, NotFound, Unauthenticated

from .conftest import FakeDatabase


def new_user() -> str:
    return str(uuid.uuid4())


class TestCreateProfile:
    def test_creates(self, handlers: ProfileHandlers, database: FakeDatabase) -> None:
        user = new_user()
        profile = handlers.create_profile(user, "Ada")
        assert profile.display_name == "Ada"
        assert database.rows[user] == profile

    def test_existing_profile_is_returned_as_is(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        user = new_user()
        first = handlers.create_profile(user, "Ada")
        again = handlers.create_profile(user, "Someone Else")
        assert again == first
        assert database.rows[user].display_name == "Ada"
        assert database.commits == 1

    def test_user_id_is_normalized(self, handlers: ProfileHandlers) -> None:
        user = new_user()
        assert handlers.create_profile(user.upper(), "Ada").user_id == user

    def test_invalid_input_writes_nothing(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        with pytest.raises(InvalidArgument):
            handlers.create_profile("not-a-uuid", "Ada")
        assert database.rows == {}


class TestGetMyProfile:
    def test_missing_profile_is_created_lazily(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        user = new_user()
        profile = handlers.get_my_profile(user)
        assert profile.user_id == user
        assert profile.display_name == f"user-{user[:8]}"
        assert user in database.rows

    def test_existing_profile(self, handlers: ProfileHandlers) -> None:
        user = new_user()
        created = handlers.create_profile(user, "Ada")
        assert handlers.get_my_profile(user) == created

    @pytest.mark.parametrize("caller", ["", "admin", "3f2a6c1e9b7d4c1a8e2f0a1b2c3d4e5f"])
    def test_malformed_caller_is_unauthenticated(
        self, handlers: ProfileHandlers, caller: str
    ) -> None:
        with pytest.raises(Unauthenticated):
            handlers.get_my_profile(caller)

    def test_reads_fill_the_cache_and_hit_it(
        self, handlers: ProfileHandlers, database: FakeDatabase, cache: InProcessCache
    ) -> None:
        user = new_user()
        handlers.create_profile(user, "Ada")
        first = handlers.get_my_profile(user)
        payload = cache.get(cache_key(user))
        assert payload is not None
        assert decode_profile(payload) == first
        reads = database.read_only_units
        assert handlers.get_my_profile(user) == first
        assert database.read_only_units == reads

    def test_unreadable_cache_entry_is_a_miss(
        self, handlers: ProfileHandlers, cache: InProcessCache
    ) -> None:
        user = new_user()
        created = handlers.create_profile(user, "Ada")
        cache.set(cache_key(user), b"{not json", 60)
        assert handlers.get_my_profile(user) == created


class TestUpdateMyProfile:
    def test_only_masked_fields_change(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        user = new_user()
        created = handlers.create_profile(user, "Ada")
        draft = ProfileDraft(display_name="Grace", bio="admiral", locale="en-us")
        updated = handlers.update_my_profile(user, draft, ["bio", "locale"])
        assert (updated.display_name, updated.bio, updated.locale) == ("Ada", "admiral", "en-US")
        assert updated.create_time == created.create_time
        assert updated.update_time > created.update_time
        assert database.rows[user] == updated

    def test_invalid_update_writes_nothing(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        user = new_user()
        handlers.create_profile(user, "Ada")
        before = copy.deepcopy(database.rows)
        commits = database.commits
        for draft, mask in [
            (ProfileDraft(bio="ok", avatar_url="http://x"), ["bio", "avatar_url"]),
            (ProfileDraft(bio="ok"), ["bio", "user_id"]),
            (ProfileDraft(bio="ok"), []),
        ]:
            with pytest.raises(InvalidArgument):
                handlers.update_my_profile(user, draft, mask)
        assert database.rows == before
        assert database.commits == commits

    def test_update_invalidates_the_cache(
        self, handlers: ProfileHandlers, cache: InProcessCache
    ) -> None:
        user = new_user()
        handlers.create_profile(user, "Ada")
        handlers.get_my_profile(user)
        assert cache.get(cache_key(user)) is not None
        handlers.update_my_profile(user, ProfileDraft(bio="new"), ["bio"])
        assert cache.get(cache_key(user)) is None
        assert handlers.get_my_profile(user).bio == "new"

    def test_missing_profile_is_created_then_updated(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        user = new_user()
        updated = handlers.update_my_profile(user, ProfileDraft(bio="hello"), ["bio"])
        assert updated.bio == "hello"
        assert updated.display_name == f"user-{user[:8]}"
        assert database.rows[user] == updated

    def test_malformed_caller_is_unauthenticated(self, handlers: ProfileHandlers) -> None:
        with pytest.raises(Unauthenticated):
            handlers.update_my_profile("nobody", ProfileDraft(bio="x"), ["bio"])


class TestGetPublicProfile:
    def test_public_fields(self, handlers: ProfileHandlers) -> None:
        user = new_user()
        handlers.create_profile(user, "Ada")
        handlers.update_my_profile(
            user,
            ProfileDraft(bio="hi", locale="en", preferences={"theme": "dark"}),
            ["bio", "locale", "preferences"],
        )
        public = handlers.get_public_profile(user)
        assert (public.user_id, public.display_name, public.bio) == (user, "Ada", "hi")
        assert not hasattr(public, "preferences")
        assert not hasattr(public, "locale")

    def test_unknown_user_is_not_found_and_not_created(
        self, handlers: ProfileHandlers, database: FakeDatabase
    ) -> None:
        with pytest.raises(NotFound):
            handlers.get_public_profile(new_user())
        assert database.rows == {}

    def test_malformed_user_id(self, handlers: ProfileHandlers) -> None:
        with pytest.raises(InvalidArgument) as caught:
            handlers.get_public_profile("../etc/passwd")
        assert [v.field for v in caught.value.violations] == ["user_id"]
