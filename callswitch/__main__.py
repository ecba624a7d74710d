import sys

from callswitch.cli import main

sys.exit(main())
