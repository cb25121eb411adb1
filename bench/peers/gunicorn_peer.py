"""gunicorn settings for the bench's peers: the gateway's worker model and sizes.

The same `gthread` worker class, worker and thread counts and keep-alive as
gateway/src/gateway/gunicorn_config.py (read from the same GATEWAY_* settings),
so scenarios 1 and 2 differ from the gateway only in the application.
"""

from __future__ import annotations

import os

from gateway.settings import load_gateway_settings

_settings = load_gateway_settings()

bind = [f"127.0.0.1:{os.environ['PEER_PORT']}"]
worker_class = "gthread"
workers = _settings.workers
threads = _settings.threads
keepalive = _settings.keepalive_seconds
timeout = 30
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = "warning"
worker_tmp_dir = "/dev/shm"  # noqa: S108 - tmpfs heartbeat files, as the gateway
control_socket_disable = True
