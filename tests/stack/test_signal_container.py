"""Signalling a FAUCET container (the compose stack's --faucet-container) reaches its process
directly, never through ``docker kill``: Docker 20.10 records a ``docker kill`` as a stop by hand
(moby/moby#41302) and then an ``unless-stopped`` FAUCET stays down after a reboot. The reboot test
shows the consequence on the compose deployment; this shows the mechanism on the host's dockerd."""

from __future__ import annotations

import json
import secrets

import pytest

from dovecote.reconciler.faucet import SignalError, Signaller
from tests.stack.stack import IMAGE, run, wait_until

TRAP = 'trap "echo got-HUP" HUP; echo ready; while :; do sleep 0.2; done'


def events_of(name: str, since: str) -> list[str]:
    out = run("docker", "events", "--since", since, "--until", "0s", "--filter", f"container={name}",
              "--format", "{{json .}}").stdout  # fmt: skip
    return [json.loads(line).get("Action", "") for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("init", [True, False])
def test_a_faucet_container_is_signalled_by_its_process_not_docker_kill(init: bool) -> None:
    name = "dctsig" + secrets.token_hex(3)
    since = run("date", "+%s").stdout.strip()
    run("docker", "run", "-d", "--name", name, *(["--init"] if init else []), "--restart", "unless-stopped",
        IMAGE, "sh", "-c", TRAP)  # fmt: skip
    try:
        wait_until(lambda: "ready" in run("docker", "logs", name).stdout, 30, "the container to start")
        Signaller(container=name)()
        wait_until(lambda: "got-HUP" in run("docker", "logs", name).stdout, 30, "the container's process to get HUP")
        # `docker kill` would show as a kill event (the one Docker counts as a stop by hand)
        assert "kill" not in events_of(name, since)
        assert run("docker", "inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        run("docker", "stop", "-t", "1", name)
        with pytest.raises(SignalError, match="not running"):
            Signaller(container=name)()
    finally:
        run("docker", "rm", "-f", name, check=False)


def test_an_unknown_faucet_container_is_a_signal_error() -> None:
    with pytest.raises(SignalError, match="dctsig-none"):
        Signaller(container="dctsig-none")()
