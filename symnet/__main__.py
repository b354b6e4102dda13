import sys

from symnet.cli.replay import main

sys.exit(main())
