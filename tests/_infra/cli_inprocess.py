"""Run a ``sessionseal`` command in this process, in the environment a subprocess would get.

For tests whose subject is what a command writes or says, not the process (``hooks
install|status|uninstall``): click's CliRunner saves a Python start-up and the imports per run.
The environment is the one :func:`tests.integration._cli.sessionseal` gives its child (PATH,
LANG, PYTHONPATH and the test's own variables), every other variable unset for the run.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Mapping

from click.testing import CliRunner

from sessionseal.cli import cli
from tests.integration._cli import SRC, Ran


def sessionseal_in_process(*args: str, env: Mapping[str, str], input: str | None = None) -> Ran:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(SRC), **env}
    isolated: dict[str, str | None] = {name: None for name in os.environ if name not in full}
    isolated.update(full)
    start = time.monotonic()
    result = CliRunner().invoke(cli, list(args), input=input, env=isolated, prog_name="sessionseal")
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # As the process would show it: a traceback on stderr, exit 1.
        err += "".join(traceback.format_exception(result.exception))
    return Ran(result.exit_code, result.stdout, err, time.monotonic() - start)
