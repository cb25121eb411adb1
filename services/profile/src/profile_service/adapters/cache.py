"""Cache-aside for profiles by user id, on the kit's byte cache (Redis or in-process).

Entries are JSON, versioned in the key so a new layout never reads an old one.
A cache that fails or holds garbage is a miss: the database answers instead.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from switchyard_kit import Cache

from profile_service.domain.model import Profile

logger = logging.getLogger("profile.cache")

KEY_VERSION = "v1"


def cache_key(user_id: str) -> str:
    return f"{KEY_VERSION}:user:{user_id}"


def encode_profile(profile: Profile) -> bytes:
    return json.dumps(
        {
            "user_id": profile.user_id,
            "display_name": profile.display_name,
            "bio": profile.bio,
            "avatar_url": profile.avatar_url,
            "locale": profile.locale,
            "preferences": profile.preferences,
            "create_time": profile.create_time.isoformat(),
            "update_time": profile.update_time.isoformat(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def decode_profile(payload: bytes) -> Profile:
    """The profile in `payload`; ValueError (or KeyError, TypeError) when it is not one."""
    data: dict[str, Any] = json.loads(payload)
    preferences = data["preferences"]
    if not isinstance(preferences, dict):
        raise TypeError("preferences is not an object")
    return Profile(
        user_id=str(data["user_id"]),
        display_name=str(data["display_name"]),
        bio=str(data["bio"]),
        avatar_url=str(data["avatar_url"]),
        locale=str(data["locale"]),
        preferences={str(key): str(value) for key, value in preferences.items()},
        create_time=datetime.fromisoformat(data["create_time"]),
        update_time=datetime.fromisoformat(data["update_time"]),
    )


class ProfileCache:
    """Profiles by user id with a TTL.

    Example::

        cache = ProfileCache(build_cache("profile", settings.redis_url), ttl_seconds=60)
        profile = cache.get(user_id) or load_from_database(user_id)
    """

    def __init__(self, cache: Cache, ttl_seconds: float) -> None:
        self.cache = cache
        self.ttl_seconds = ttl_seconds

    def get(self, user_id: str) -> Profile | None:
        key = cache_key(user_id)
        payload = self.cache.get(key)
        if payload is None:
            return None
        try:
            profile = decode_profile(payload)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("unreadable cache entry dropped", extra={"error": type(exc).__name__})
            self.cache.delete(key)
            return None
        if profile.user_id != user_id:
            self.cache.delete(key)
            return None
        return profile

    def put(self, profile: Profile) -> None:
        self.cache.set(cache_key(profile.user_id), encode_profile(profile), self.ttl_seconds)

    def invalidate(self, user_id: str) -> None:
        self.cache.delete(cache_key(user_id))
