"""HTTP <-> gRPC transcoding driven only by the services' descriptors.

`discover_routes` reads every `google.api.http` rule of a service;
`PathTemplate` turns its path into a Flask rule; `build_request` /
`render_response` move JSON, query strings and path variables in and out of
the protobuf messages.
"""

from gateway.transcoding.messages import build_request, render_response
from gateway.transcoding.path_template import PathTemplate, TemplateConverter, TemplateError
from gateway.transcoding.routes import HttpRoute, RouteOptions, discover_routes

__all__ = [
    "HttpRoute",
    "PathTemplate",
    "RouteOptions",
    "TemplateConverter",
    "TemplateError",
    "build_request",
    "discover_routes",
    "render_response",
]
