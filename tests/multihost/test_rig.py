"""The multi-host rig itself works: what later multi-host tests stand on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.multihost.rig import Rig, plan_hosts, wait_until

RPC_CLIENT = Path(__file__).resolve().parent / "experiments" / "rpc_client.py"


def test_hosts_are_planned_on_both_networks() -> None:
    hosts = plan_hosts(["a", "b"], "10.213.0.0/24", "10.214.0.0/24")
    assert [(h.name, h.ctl_ip, h.underlay_ip) for h in hosts] == [
        ("a", "10.213.0.11", "10.214.0.11/24"),
        ("b", "10.213.0.12", "10.214.0.12/24"),
    ]


def test_rig_hosts_run_their_own_daemons_and_reach_each_other(rig: Rig, rig_timings: dict[str, float]) -> None:
    system_ids = set()
    for host in rig.spec.hosts:
        system_ids.add(rig.exec(host.name, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id").stdout)
        assert rig.exec(host.name, "docker", "image", "inspect", "busybox:latest", check=False).returncode == 0
        assert rig.exec(host.name, "ovs-vsctl", "get", "bridge", "br-phy", "datapath_type").stdout.strip() == "netdev"
    assert len(system_ids) == len(rig.spec.hosts), "each host has its own Open vSwitch"
    a, b = rig.spec.hosts[0], rig.spec.hosts[1]
    target = b.underlay_ip.split("/")[0]
    wait_until(
        lambda: rig.exec(a.name, "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0,
        timeout=30,
        what="the underlay",
    )
    rig.cut(a.name)
    assert rig.exec(a.name, "ping", "-c", "2", "-W", "1", target, check=False).returncode != 0
    rig.restore(a.name)
    wait_until(
        lambda: rig.exec(a.name, "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0,
        timeout=30,
        what="the underlay back",
    )
    assert any(k.startswith("faucet_config_reload_requests_total") for k in rig.faucet_metrics())


def test_faucetconfrpc_needs_a_client_certificate(rig: Rig) -> None:
    host = rig.spec.hosts[0].name
    rig.exec(host, "sh", "-c", "cat > /root/rpc_client.py", stdin=RPC_CLIENT.read_text())
    mine = "rig_rpc_check.yaml"  # not a host's file: the hosts' reconcilers own theirs
    written = rig.exec(host, "python3", "/root/rpc_client.py", "set", mine, stdin="dps: {}\n", check=False)
    assert json.loads(written.stdout)["code"] == "OK", written.stdout + written.stderr
    read = json.loads(rig.exec(host, "python3", "/root/rpc_client.py", "get", mine).stdout)
    assert read["yaml"].strip() == "dps: {}"
    refused = rig.exec(host, "python3", "/root/rpc_client.py", "--no-client-cert", "--timeout", "5", "get", check=False)
    assert json.loads(refused.stdout)["code"] == "UNAVAILABLE"


def test_a_host_reboots_with_its_disks(rig: Rig, measure: Callable[[str], None]) -> None:
    """A reboot clears the daemons and /run but keeps OVSDB and Docker's disk, as on a machine."""
    a, b = rig.spec.hosts[0], rig.spec.hosts[1]
    system_id = rig.exec(a.name, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id").stdout
    rig.exec(a.name, "touch", "/run/before-reboot")
    measure(f"multi-host rig: reboot of a host {rig.reboot(a.name):.1f} s")
    assert rig.exec(a.name, "test", "-e", "/run/before-reboot", check=False).returncode != 0
    assert rig.exec(a.name, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id").stdout == system_id
    assert a.underlay_ip in rig.exec(a.name, "ip", "-o", "-4", "addr", "show", "dev", "br-phy").stdout
    target = b.underlay_ip.split("/")[0]
    wait_until(
        lambda: rig.exec(a.name, "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0,
        timeout=30,
        what="the underlay after the reboot",
    )
