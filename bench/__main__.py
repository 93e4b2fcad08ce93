"""`python -m bench`: every benchmark, the table, docs/performance.md and .png."""

import sys

from bench.report import main

sys.exit(main())
