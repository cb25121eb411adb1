"""gunicorn configuration of the gateway: `gunicorn -c gateway/gunicorn.conf.py`.

The settings and hooks live in the package (gateway.gunicorn_config) so an
installed wheel carries them too; `python -m gateway` uses that module directly.
"""

from gateway.gunicorn_config import *  # noqa: F403 - gunicorn reads these module globals
