import sys

from shared.admin.cli import main
from shared.logging import configure_logging

configure_logging("WARNING", json_output=False)  # stdout carries the answer; warnings go to stderr
sys.exit(main())
