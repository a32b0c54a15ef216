#!/usr/bin/env python3
"""Remove every iptables rule tagged ``dovecote:`` (filter and nat): the compose driver's stop."""

import sys

from dovecote.driver import nat


def main() -> int:
    removed = nat.remove_every_rule()
    print(f"dovecote-remove-rules: removed {removed} rules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
