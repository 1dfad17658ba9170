"""`python -m bench.state_plane [--quick] [--rounds N] [--write-doc]`."""

import sys

from bench.state_plane import main

sys.exit(main(sys.argv[1:]))
