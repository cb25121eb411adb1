"""The server interceptor every service runs: ids in the log context, RED
metrics per RPC, the inbound deadline for outgoing calls, every request
checked against its proto's `buf.validate` rules before the handler runs
(INVALID_ARGUMENT with field violations otherwise), and errors turned
into statuses with details (domain errors as they say; a database that cannot
be reached as UNAVAILABLE, so the caller sees 503, not 500)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
from sqlalchemy import exc as sa_exc

from switchyard_kit._channels import inbound_deadline_var
from switchyard_kit._errors import DomainError
from switchyard_kit._grpc_errors import to_rpc_status
from switchyard_kit._logging import request_id_var, user_id_var
from switchyard_kit._metadata import REQUEST_ID_KEY, USER_ID_KEY
from switchyard_kit._metrics import GRPC_SERVER_HANDLED, GRPC_SERVER_LATENCY
from switchyard_kit._validation import check_request

logger = logging.getLogger("switchyard.rpc")

try:
    import sqlite3

    # "database is locked" is contention, not an outage: left as INTERNAL.
    _SQLITE_QUERY_ERRORS: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
except ImportError:  # pragma: no cover - CPython always has sqlite3
    _SQLITE_QUERY_ERRORS = ()

if TYPE_CHECKING:
    # grpc-stubs make the interceptor generic; the runtime class is not subscriptable.
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor


# A pool that cannot hand out a connection, or a connection that failed.
_DATABASE_UNREACHABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


def _is_connectivity(error: Exception) -> bool:
    """True for "cannot reach the database", not for a query's own failure."""
    if isinstance(error, sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # psycopg2 OperationalError without a SQLSTATE: the connection, not the query.
    original = getattr(error, "orig", None)
    return getattr(original, "pgcode", None) is None and not isinstance(
        original, _SQLITE_QUERY_ERRORS
    )


def _split_method(full_method: str) -> tuple[str, str]:
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


class ServiceInterceptor(_ServerInterceptor):
    """Wraps every unary RPC handler of one service.

    Health and reflection calls pass through untouched so probes do not
    drown the logs and metrics. A method's wrapped handler is built on its
    first call and reused: gRPC asks the interceptor on every call, and only
    the call's metadata (read from its context) differs between calls.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or method.startswith("/grpc."):
            return handler
        wrapped = self._wrap(method, handler, handler.unary_unary)
        # Two threads may wrap the same method at once: either result serves.
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(
        self,
        method: str,
        handler: grpc.RpcMethodHandler[Any, Any],
        inner: Callable[[Any, grpc.ServicerContext], Any],
    ) -> grpc.RpcMethodHandler[Any, Any]:
        grpc_service, grpc_method = _split_method(method)
        latency = GRPC_SERVER_LATENCY.labels(grpc_service, grpc_method)
        handled: dict[grpc.StatusCode, Any] = {}

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {
                key: value.decode() if isinstance(value, bytes) else value
                for key, value in context.invocation_metadata() or ()
            }
            request_token = request_id_var.set(metadata.get(REQUEST_ID_KEY))
            user_token = user_id_var.set(metadata.get(USER_ID_KEY))
            remaining = context.time_remaining()
            deadline_token = inbound_deadline_var.set(
                None if remaining is None else time.monotonic() + remaining
            )
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                check_request(request)
                return inner(request, context)
            except DomainError as error:
                status = to_rpc_status(error, self.service)
                code = status.code
                context.abort_with_status(status)
            except Exception as error:
                # abort() raises too; its code is what the handler chose.
                chosen = cast(Any, context).code()
                if chosen is not None and chosen != grpc.StatusCode.OK:
                    code = chosen
                    raise
                if isinstance(error, _DATABASE_UNREACHABLE) and _is_connectivity(error):
                    code = grpc.StatusCode.UNAVAILABLE
                    logger.warning(
                        "database unavailable in %s", method, extra={"error": type(error).__name__}
                    )
                    context.abort(code, "the service's database is unavailable")
                code = grpc.StatusCode.INTERNAL
                logger.exception("unhandled error in %s", method)
                context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                elapsed = time.perf_counter() - started
                counter = handled.get(code)
                if counter is None:
                    counter = handled.setdefault(
                        code, GRPC_SERVER_HANDLED.labels(grpc_service, grpc_method, code.name)
                    )
                counter.inc()
                latency.observe(elapsed)
                level = logging.WARNING if code == grpc.StatusCode.INTERNAL else logging.DEBUG
                if logger.isEnabledFor(level):
                    logger.log(
                        level,
                        "rpc finished",
                        extra={"rpc": method, "code": code.name, "duration_ms": elapsed * 1000},
                    )
                request_id_var.reset(request_token)
                user_id_var.reset(user_token)
                inbound_deadline_var.reset(deadline_token)

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
