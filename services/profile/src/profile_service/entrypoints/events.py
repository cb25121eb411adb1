"""Events the profile service consumes: auth's UserRegistered creates the profile.

The same handler runs behind both transports: `python -m profile_service
worker` (a Redis consumer group on stream "users") and the EventSinkService
on the gRPC server (auth's relay delivers there when there is no Redis).
"""

from __future__ import annotations

import logging

from switchyard.auth.v1 import events_pb2 as auth_events
from switchyard.events.v1 import events_pb2
from switchyard_kit import InvalidArgument
from switchyard_kit.events import EventHandler, unpack_payload

from profile_service.service_layer.handlers import ProfileHandlers

logger = logging.getLogger("profile.events")

CONSUMER_GROUP = "profile"


def user_registered_handler(handlers: ProfileHandlers) -> EventHandler:
    """Handles UserRegistered; other event types on the stream are ignored.

    Creating the profile is idempotent (an existing profile is kept), so a
    redelivered event changes nothing. An event that can never succeed (not
    a user id) is logged and dropped rather than retried forever; a display
    name this service refuses falls back to the default name.
    """

    def handle(event: events_pb2.Event) -> None:
        registered = unpack_payload(event, auth_events.UserRegistered)
        if registered is None:
            return
        try:
            handlers.register_user(registered.user_id, registered.display_name)
        except InvalidArgument as exc:
            names = {violation.field for violation in exc.violations}
            if names == {"display_name"}:
                logger.warning(
                    "display name refused; the profile gets the default name",
                    extra={"event_id": event.id, "profile_user_id": registered.user_id},
                )
                handlers.register_user(registered.user_id, "")
                return
            logger.error(
                "UserRegistered event dropped: invalid user id",
                extra={"event_id": event.id, "fields": sorted(names)},
            )

    return handle
