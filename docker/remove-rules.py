#!/usr/bin/env python3
"""Remove every iptables rule tagged ``dovecote:`` (filter and nat): the compose driver's stop."""

import subprocess
import sys

from dovecote.driver import nat


def main() -> int:
    removed = 0
    for table in ("filter", "nat"):
        for rule in nat.tagged_rules(table):
            result = subprocess.run(["iptables", "-w", "5", "-t", table, "-D", *rule.args[1:]], check=False)
            removed += result.returncode == 0
    print(f"dovecote-remove-rules: removed {removed} rules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
