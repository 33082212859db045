"""`python -m parascale`: the headless command line."""
import sys

from .parascale_blender.cli import main

sys.exit(main())
