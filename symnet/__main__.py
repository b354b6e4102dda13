import sys

from symnet.replay import main

sys.exit(main())
