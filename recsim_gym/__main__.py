"""``python -m recsim_gym`` runs the command line."""

import sys

from recsim_gym.cli import main

sys.exit(main())
