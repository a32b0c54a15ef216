"""Operator edits to faucet.yaml are hints too: watchdog reports them, the next pass reads them."""

from __future__ import annotations

import os
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from dovecote.contract import GENERATED_NAME


class _Handler(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[str], None]) -> None:
        self.on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        names = {os.path.basename(str(event.src_path)), os.path.basename(str(getattr(event, "dest_path", "") or ""))}
        # our own temp files and the generated file are not the operator's edits
        if any(n.endswith((".yaml", ".yml")) and not n.startswith(".dovecote-") and n != GENERATED_NAME for n in names):
            self.on_change("faucet-config")


def watch_config(config_path: str, on_change: Callable[[str], None]) -> Observer:
    """Start watching the config's directory (renames replace the inode, so watch the folder)."""
    observer = Observer()
    observer.schedule(_Handler(on_change), os.path.dirname(os.path.realpath(config_path)), recursive=False)
    observer.daemon = True
    observer.start()
    return observer
