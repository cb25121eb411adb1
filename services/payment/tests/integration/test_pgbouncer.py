"""Payment behind a PgBouncer that goes away: what prod's rolling update of
the PgBouncer Deployment (k8s/overlays/prod/pgbouncer.yaml) does to the
connections the service pools."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.backends("pgbouncer")


def test_a_pgbouncer_restart_costs_no_request(client, pgbouncer, user):
    """Every pooled connection is broken by the restart; the pool's pre-ping
    (the kit's create_database_engine) finds that out at checkout and
    reconnects, so the next payment succeeds instead of failing once per
    pooled connection."""
    client.top_up(user, 1_000)
    pgbouncer.restart()
    assert client.pay(user, 100).amount == 100
    assert client.balances(user) == {"EUR": 900}
