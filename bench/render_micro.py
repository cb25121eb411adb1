"""Micro-benchmark of the gateway's response rendering, old and new side by side.

    .venv/bin/python bench/render_micro.py [--rounds 7] [--number 2000]

Per answer: the response message of a route to JSON bytes, as the call view
does it. Old: json_format.MessageToDict + int64_as_numbers + json.dumps. New:
gateway.transcoding.render_response (the compiled renderer) + orjson. Three
answers: GET /v1/profiles/me (a Profile with preferences and timestamps),
GET /v1/recommendations (10 items), GET /v1/wallet (3 balances). The two
paths run interleaved, round after round, and each reports its best round
(the least disturbed by the other sessions sharing the machine); the ratio
is old / new. In-process, single thread: it measures CPU per render only.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import timeit
from collections.abc import Callable
from typing import Any, cast

from gateway.backends import PAYMENT, PROFILE, RECOMMENDATION
from gateway.transcoding import HttpRoute, discover_routes, render_response
from gateway.transcoding.json_values import FD, int64_as_numbers, is_repeated
from gateway.transcoding.render import encode
from google.protobuf import descriptor, json_format, message
from switchyard.payment.v1 import payment_pb2
from switchyard.profile.v1 import profile_pb2
from switchyard.recommendation.v1 import recommendation_pb2

ROUTES = {
    route.method.name: route
    for spec in (PROFILE, PAYMENT, RECOMMENDATION)
    for route in discover_routes(spec.name, spec.service)
}


def _old_dict(value: message.Message) -> Any:
    rendered = json_format.MessageToDict(
        value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return int64_as_numbers(rendered, cast(descriptor.Descriptor, value.DESCRIPTOR))


def old_answer(route: HttpRoute, response: message.Message) -> bytes:
    """What the gateway did before the compiled renderer (render_response, json.dumps)."""
    if not route.response_body:
        payload = _old_dict(response)
    else:
        field = route.method.output_type.fields_by_name[route.response_body]
        if field.type == FD.TYPE_MESSAGE and not is_repeated(field):
            payload = _old_dict(getattr(response, field.name))
        else:
            payload = _old_dict(response).get(field.name)
    return json.dumps(payload).encode()


def new_answer(route: HttpRoute, response: message.Message) -> bytes:
    return encode(render_response(route, response))


def profile() -> message.Message:
    item = profile_pb2.Profile(
        user_id="0b8f0d7e-6f0e-4d55-9c1a-7a3f2b4c5d6e",
        display_name="Ada Lovelace",
        bio="Analyst of engines.\nWrites notes longer than the paper they annotate.",
        avatar_url="https://avatars.example.com/ada.png",
        locale="en-GB",
        preferences={"theme": "dark", "currency": "EUR", "newsletter": "weekly", "tz": "UTC"},
    )
    item.create_time.FromSeconds(1767323045)
    item.update_time.FromSeconds(1767409445)
    return profile_pb2.GetMyProfileResponse(profile=item)


def recommendations() -> message.Message:
    items = [
        recommendation_pb2.Recommendation(
            sku=f"sku-{index:04d}", score=12.5 / (index + 1), source="personal"
        )
        for index in range(10)
    ]
    return recommendation_pb2.GetRecommendationsResponse(items=items)


def wallet() -> message.Message:
    balances = [
        payment_pb2.Balance(currency=currency, amount=amount)
        for currency, amount in [("CHF", 1250), ("EUR", 9_007_199_254_740_991), ("USD", 0)]
    ]
    return payment_pb2.GetWalletResponse(
        wallet=payment_pb2.Wallet(user_id="0b8f0d7e-6f0e-4d55-9c1a-7a3f2b4c5d6e", balances=balances)
    )


CASES: list[tuple[str, str, Callable[[], message.Message]]] = [
    ("GET /v1/profiles/me", "GetMyProfile", profile),
    ("GET /v1/recommendations (10)", "GetRecommendations", recommendations),
    ("GET /v1/wallet", "GetWallet", wallet),
]


Answer = Callable[[HttpRoute, message.Message], bytes]


def us_per_answer(
    answer: Answer, route: HttpRoute, response: message.Message, number: int
) -> float:
    return timeit.timeit(functools.partial(answer, route, response), number=number) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000, help="renders per timing")
    args = parser.parse_args()
    print(f"{'answer':<30} {'old µs':>8} {'new µs':>8} {'old/new':>8}")
    for label, method, build in CASES:
        route, response = ROUTES[method], build()
        old_bytes, new_bytes = old_answer(route, response), new_answer(route, response)
        if json.loads(old_bytes) != json.loads(new_bytes):
            print(f"{label}: the two paths disagree", file=sys.stderr)
            return 1
        old_times: list[float] = []
        new_times: list[float] = []
        for _round in range(args.rounds):
            old_times.append(us_per_answer(old_answer, route, response, args.number))
            new_times.append(us_per_answer(new_answer, route, response, args.number))
        old_us, new_us = min(old_times), min(new_times)
        print(f"{label:<30} {old_us:>8.1f} {new_us:>8.1f} {old_us / new_us:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
