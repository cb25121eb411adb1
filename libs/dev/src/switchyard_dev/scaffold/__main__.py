"""`python -m switchyard_dev.scaffold new|remove NAME` (make new-service, remove-service)."""

import sys

from switchyard_dev.scaffold import main

sys.exit(main())
