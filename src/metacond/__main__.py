import sys

from metacond.main import main

sys.exit(main())
