"""``python -m policyd`` is the ``policyd`` command."""

from __future__ import annotations

import sys

from policyd.cli.main import main

sys.exit(main())
