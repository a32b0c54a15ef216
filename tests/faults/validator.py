"""The watcher's validating process: FAUCET's parser, kept out of the test process.

Reads one JSON line per version ({"dir": ...}: a directory holding faucet.yaml, the generated file
and the operator's other includes), answers one JSON line ({"problem": null or FAUCET's reason}).
A process of its own, because FAUCET's import brings eventlet, which must not share threads with the
harness (a thread that imported it could no longer be joined), and parsing is CPU the churn needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dovecote.contract import GENERATED_NAME
from dovecote.reconciler.validate import validate


def main() -> None:
    for line in sys.stdin:
        directory = Path(json.loads(line)["dir"])
        config = directory / "faucet.yaml"
        problem = validate(str(config), config.read_text(), (directory / GENERATED_NAME).read_text())
        sys.stdout.write(json.dumps({"problem": problem}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
