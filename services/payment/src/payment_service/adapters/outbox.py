"""The relay's side of the payment outbox: the kit's SqlOutbox over `outbox`."""

from __future__ import annotations

from switchyard_kit.events import SqlOutbox

from payment_service.adapters import tables as t

PAYMENT_OUTBOX = SqlOutbox(t.outbox)
