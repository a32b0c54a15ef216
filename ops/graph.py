"""``dovecote graph``: the topology as SVG and PNG, drawn by Graphviz's ``dot``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from dovecote.ops import sources
from dovecote.ops.dot import to_dot
from dovecote.ops.status import add_source_arguments, gather


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("graph", help="draw networks, bridges and containers (SVG and PNG)")
    add_source_arguments(cmd)
    cmd.add_argument(
        "-o", "--output", default="dovecote-graph", help="path without extension: writes .dot, .svg and .png"
    )
    cmd.set_defaults(run=run)


def render(dot_text: str, base: str) -> list[str]:
    """Write ``base.dot`` and have ``dot`` draw ``base.svg`` and ``base.png``; returns the paths."""
    dot = shutil.which("dot")
    if dot is None:
        raise sources.SourceError("graphviz's 'dot' is not installed (apt-get install graphviz)")
    directory = os.path.dirname(os.path.abspath(base))
    os.makedirs(directory, exist_ok=True)
    written = [f"{base}.dot"]
    with open(written[0], "w", encoding="utf-8") as handle:
        handle.write(dot_text)
    for fmt in ("svg", "png"):
        path = f"{base}.{fmt}"
        result = sources.run([dot, f"-T{fmt}", "-o", path, written[0]], timeout=120)
        if result.returncode != 0:
            raise sources.SourceError(f"dot -T{fmt} failed: {result.stderr.strip()}")
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    gathered = gather(args)
    for error in gathered.errors:
        print(f"warning: {error}", file=sys.stderr)
    try:
        paths = render(to_dot(gathered.view), args.output)
    except sources.SourceError as exc:
        print(f"dovecote graph: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {os.path.abspath(path)}")
    return 0
