"""``python -m sessionseal``: the same as the ``sessionseal`` command."""

from sessionseal._main import main

main()
