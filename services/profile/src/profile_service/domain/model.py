"""The Profile entity, its public view, and partial updates under a field mask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from switchyard_kit import FieldViolation, InvalidArgument

from profile_service.domain import validation

# The paths an update mask may name (AIP-134), in the order of the proto.
EDITABLE_FIELDS = ("display_name", "bio", "avatar_url", "locale", "preferences")
# Fields the service sets itself; naming one in a mask is a client error.
OUTPUT_ONLY_FIELDS = ("user_id", "create_time", "update_time")

_ONE_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class PublicProfile:
    """What other signed-in users may see of a profile."""

    user_id: str
    display_name: str
    bio: str
    avatar_url: str


@dataclass(frozen=True)
class ProfileDraft:
    """Editable fields exactly as a caller sent them (not yet validated)."""

    display_name: str = ""
    bio: str = ""
    avatar_url: str = ""
    locale: str = ""
    preferences: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileUpdate:
    """Validated, normalized values of the masked fields; None = leave unchanged."""

    display_name: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    locale: str | None = None
    preferences: Mapping[str, str] | None = None

    @property
    def fields(self) -> list[str]:
        """The names of the fields this update changes."""
        return [name for name in EDITABLE_FIELDS if getattr(self, name) is not None]


@dataclass
class Profile:
    """What a user says about themselves. `user_id` is the auth user id (a UUID)."""

    user_id: str
    display_name: str
    bio: str
    avatar_url: str
    locale: str
    preferences: dict[str, str]
    create_time: datetime
    update_time: datetime

    @classmethod
    def new(cls, user_id: str, display_name: str, now: datetime) -> Profile:
        """A fresh profile; callers validate the inputs first (see `new_profile`)."""
        return cls(
            user_id=user_id,
            display_name=display_name,
            bio="",
            avatar_url="",
            locale="",
            preferences={},
            create_time=now,
            update_time=now,
        )

    def apply(self, update: ProfileUpdate, now: datetime) -> None:
        """Change the fields named by `update`, and bump update_time.

        update_time strictly increases even when the clock has not moved (or
        went back), so it orders the versions of a profile.
        """
        if update.display_name is not None:
            self.display_name = update.display_name
        if update.bio is not None:
            self.bio = update.bio
        if update.avatar_url is not None:
            self.avatar_url = update.avatar_url
        if update.locale is not None:
            self.locale = update.locale
        if update.preferences is not None:
            self.preferences = dict(update.preferences)
        self.update_time = max(now, self.update_time + _ONE_TICK)

    def public(self) -> PublicProfile:
        return PublicProfile(
            user_id=self.user_id,
            display_name=self.display_name,
            bio=self.bio,
            avatar_url=self.avatar_url,
        )


def default_display_name(user_id: str) -> str:
    """The name of a profile created without one (signup without a display name,
    or the lazy creation of a missing profile)."""
    return f"user-{user_id[:8]}"


def parse_user_id(value: str, field_path: str = "user_id") -> str:
    """The normalized user id, or InvalidArgument naming `field_path`."""
    if not validation.is_user_id(value):
        raise InvalidArgument(
            f"{field_path} must be a UUID",
            [FieldViolation(field_path, "must be a UUID")],
        )
    return validation.normalize_user_id(value)


def new_profile(user_id: str, display_name: str, now: datetime) -> Profile:
    """Validate the inputs of CreateProfile and build the profile.

    An empty (or blank) display name is not an error: signup makes it
    optional, so the profile gets `default_display_name`.
    """
    violations: list[FieldViolation] = []
    if not validation.is_user_id(user_id):
        violations.append(FieldViolation("user_id", "must be a UUID"))
    name = validation.normalize_display_name(display_name)
    if name:
        problem = validation.check_display_name(display_name)
        if problem:
            violations.append(FieldViolation("display_name", problem))
    if violations:
        raise InvalidArgument("invalid profile", violations)
    user_id = validation.normalize_user_id(user_id)
    return Profile.new(user_id, name or default_display_name(user_id), now)


def parse_update_mask(paths: Sequence[str], field_path: str = "update_mask") -> frozenset[str]:
    """The set of fields an update may change, or InvalidArgument.

    An empty mask is refused (an update must say what it changes); so is a
    path that is unknown or output only. Repeated paths are harmless.
    """
    if not paths:
        raise InvalidArgument(
            f"{field_path} must name at least one field",
            [FieldViolation(field_path, "must name at least one of " + ", ".join(EDITABLE_FIELDS))],
        )
    rejected = [path for path in dict.fromkeys(paths) if path not in EDITABLE_FIELDS]
    if rejected:
        raise InvalidArgument(
            f"{field_path} names fields that cannot be updated: " + ", ".join(rejected),
            [
                FieldViolation(
                    field_path,
                    f'"{path}" is output only and cannot be updated'
                    if path in OUTPUT_ONLY_FIELDS
                    else f'"{path}" is not a field that can be updated',
                )
                for path in rejected
            ],
        )
    return frozenset(paths)


def parse_update(
    draft: ProfileDraft, mask_paths: Sequence[str], *, field_prefix: str = ""
) -> ProfileUpdate:
    """Check the mask, then every masked field of `draft`; report all problems at once.

    Fields outside the mask are ignored, whatever they hold (AIP-134).
    Violations name fields as `field_prefix + name`; by default the bare
    profile field ("avatar_url"), which is what a client sent as the JSON key
    of its PATCH body.
    """
    mask = parse_update_mask(mask_paths)
    violations: list[FieldViolation] = []

    def problem(name: str, description: str | None) -> None:
        if description:
            violations.append(FieldViolation(field_prefix + name, description))

    display_name = bio = avatar_url = locale = None
    preferences: dict[str, str] | None = None
    if "display_name" in mask:
        display_name = validation.normalize_display_name(draft.display_name)
        problem("display_name", validation.check_display_name(draft.display_name))
    if "bio" in mask:
        bio = draft.bio
        problem("bio", validation.check_bio(bio))
    if "avatar_url" in mask:
        avatar_url = draft.avatar_url
        problem("avatar_url", validation.check_avatar_url(avatar_url))
    if "locale" in mask:
        problem("locale", validation.check_locale(draft.locale))
        locale = validation.normalize_locale(draft.locale)
    if "preferences" in mask:
        preferences = dict(draft.preferences)
        for description in validation.check_preferences(preferences):
            problem("preferences", description)
    if violations:
        raise InvalidArgument("invalid profile", violations)
    return ProfileUpdate(
        display_name=display_name,
        bio=bio,
        avatar_url=avatar_url,
        locale=locale,
        preferences=preferences,
    )
