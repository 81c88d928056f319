import sys

from velro.cli import main

sys.exit(main())
