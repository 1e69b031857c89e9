"""Write tests/_infra/file_weights.json from a junit report of a whole run: each test file's
seconds (setup, call and teardown of its tests), heaviest first, files under two seconds left
out.  CI runs the files in that order (tests/_infra/order.py): see there why.

    python scripts/test_weights.py .ci/artefacts/junit.xml > tests/_infra/file_weights.json
"""

from __future__ import annotations

import collections
import json
import sys
import xml.etree.ElementTree as ET

#: Files lighter than this keep their place after the weighed ones.
LEAST = 2.0


def weights(report: str) -> dict[str, int]:
    per_file: dict[str, float] = collections.defaultdict(float)
    # The report is one this machine wrote (CI's artefact), not input from elsewhere.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        # classname: tests.unit.test_x, or tests.unit.test_x.TestClass for a class's tests
        parts = [p for p in case.get("classname", "").split(".") if not p[:1].isupper()]
        per_file["/".join(parts) + ".py"] += float(case.get("time") or 0)
    return {name: round(s) for name, s in sorted(per_file.items(), key=lambda kv: -kv[1]) if s >= LEAST}


if __name__ == "__main__":
    json.dump(weights(sys.argv[1]), sys.stdout, indent=0)
    sys.stdout.write("\n")
