"""The optional compiled accelerator of the index build (docs/design.md, "Build speed").

Everything else is in pyproject.toml. ``optional=True``: on a machine without a C compiler or
the Python headers the build of ``sessionseal._fts._ctok`` fails quietly and sessionseal runs
its pure-Python tokenizer, which gives the same terms.
"""

import sys

from setuptools import Extension, setup

_WARNINGS = [] if sys.platform == "win32" else ["-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "sessionseal._fts._ctok",
            sources=["src/sessionseal/_fts/_ctok.c"],
            extra_compile_args=_WARNINGS,
            optional=True,
        )
    ]
)
