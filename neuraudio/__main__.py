import sys

from neuraudio.cli import main

sys.exit(main())
