"""``dovecote graph``: the topology as SVG and PNG, drawn by Graphviz's ``dot``."""

from __future__ import annotations

import argparse
import os
import shutil

from dovecote.ops import sources
from dovecote.ops.dot import to_dot
from dovecote.ops.status import add_source_arguments, gather, warn


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "graph",
        help="draw networks, bridges and containers (SVG and PNG)",
        description="Draw what 'dovecote status' shows with Graphviz's dot: BASE.dot, BASE.svg and BASE.png.\n"
        "Exit status 1 when a source could not be read (the drawing shows the rest) or dot failed.",
    )
    add_source_arguments(cmd)
    cmd.add_argument(
        "-o",
        "--output",
        default="dovecote-graph",
        metavar="BASE",
        help="path without extension: writes BASE.dot, BASE.svg and BASE.png",
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
    warn(gathered.errors)
    for path in render(to_dot(gathered.view), args.output):
        print(f"wrote {os.path.abspath(path)}")
    return 1 if gathered.errors else 0
