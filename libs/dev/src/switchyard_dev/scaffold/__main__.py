"""`python -m switchyard_dev.scaffold new|remove NAME` (the Makefile's new-service, remove-service)."""

import sys

from switchyard_dev.scaffold import main

sys.exit(main())
