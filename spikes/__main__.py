"""``python -m spikes ...``: the command line (what torchrun runs with ``-m spikes``)."""
import sys

from spikes.cli import main

sys.exit(main())
