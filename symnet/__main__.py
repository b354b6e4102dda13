import sys

from symnet.cli import main

sys.exit(main())
