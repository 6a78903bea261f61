import sys

from videobert.cli import main

sys.exit(main())
