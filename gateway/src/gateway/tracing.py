"""The gateway's part of tracing: a Flask server span per request.

The tracer provider itself is set up by `switchyard_kit.setup_telemetry`
(gunicorn's post_fork); this adds the Flask instrumentation to the worker's
app: a server span named after the route template, continuing a W3C
`traceparent` sent by the client. Its context flows into the gRPC client span
and the call's metadata through the kit's channel interceptor. Operational
endpoints make no spans, and nothing is instrumented when tracing is disabled
(OTEL_SDK_DISABLED): the Flask hooks alone cost ~10% of a proxied read.
"""

from __future__ import annotations

from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from switchyard_kit import tracing_enabled

EXCLUDED_URLS = "healthz,readyz,metrics,docs,openapi.json"


def instrument_app(app: Flask) -> Flask:
    """Trace every request of `app` (before it serves its first request).

    Example::

        setup_telemetry("gateway")
        instrument_app(create_app())
    """
    if tracing_enabled() and not getattr(app, "_is_instrumented_by_opentelemetry", False):
        FlaskInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS)  # type: ignore[no-untyped-call]
    return app


__all__ = ["EXCLUDED_URLS", "instrument_app"]
