"""Scenario 1, the ceiling: Flask answering a fixed small JSON.

Served by gunicorn with the gateway's worker settings (see bench/bench.py), it
is the most any Flask app on gunicorn can answer on this machine.
"""

from __future__ import annotations

from flask import Flask, Response

BODY = '{"status":"ok","service":"ceiling"}'

app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(BODY, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")
