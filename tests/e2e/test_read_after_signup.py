"""A new account's profile is readable by everyone as soon as signup answers.

Signup creates it through the profile service's CreateProfile before it
answers 201; the UserRegistered event is the backup when that call fails.
"""

from __future__ import annotations

import httpx

from e2e.harness import AuthActions


def test_another_user_reads_the_new_profile_right_after_signup(api: httpx.Client) -> None:
    actions = AuthActions(api)  # no waiting for the event: the point of the test
    reader = actions.signup(display_name="Reader")
    for display_name in ("Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"):
        newcomer = actions.signup(display_name=display_name)
        response = api.get(f"/v1/profiles/{newcomer.user_id}", headers=reader.headers)
        assert response.status_code == 200, response.text
        assert response.json()["display_name"] == display_name


def test_the_owner_reads_the_same_profile_as_others(api: httpx.Client) -> None:
    actions = AuthActions(api)
    newcomer = actions.signup(display_name="Frances Allen")
    own = api.get("/v1/profiles/me", headers=newcomer.headers)
    public = api.get(f"/v1/profiles/{newcomer.user_id}", headers=newcomer.headers)
    assert own.status_code == public.status_code == 200
    assert own.json()["display_name"] == public.json()["display_name"] == "Frances Allen"
