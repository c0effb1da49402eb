import sys

from ingress.cli import main

sys.exit(main())
