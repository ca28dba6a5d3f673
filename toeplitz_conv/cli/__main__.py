"""``python -m toeplitz_conv.cli``: the ``toeplitz-conv`` command."""

import sys

from .main import main

sys.exit(main())
