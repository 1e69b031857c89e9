"""``python -m sessionseal``: the same as the ``sessionseal`` command."""

from sessionseal.cli import main

main()
