"""Issue 18 phase 1: FAUCET stacking between two rig hosts, by hand (no dovecote code involved).

What it does, printing a line per step and the numbers at the end:

1. On each host: a per-host stack bridge ``dcstack`` (FAUCET dp ``stack@HOST``) with one VXLAN
   port per peer over the underlay, and a network bridge ``dcn-net1`` (dp ``net1@HOST``) patched
   into it (OVS patch ports; the patch is a FAUCET stack link). Two busybox containers of the
   host's own dockerd get veth ports on the network bridge.
2. Each host writes *its own* file ``dovecote_HOST.yaml`` through faucetconfrpc (mTLS), in the
   order a real join would: A alone, then B with a link to A (A has no reverse port yet), then A
   with its reverse port. The operator's faucet.yaml holds the VLAN and includes both files.
3. Waits for LLDP to bring the stack ports UP (``port_stack_state`` 3), then pings within a host
   and across hosts (latency).
4. Cuts host A's underlay, measures until the cross-host ping fails and FAUCET marks the stack
   port down; restores it and measures the heal.
5. Adds a second network on host A only and records which of B's dps FAUCET restarted.
6. One gateway for the segment: the gateway address and NAT on host A only; a container on B
   reaches the "outside" (the controller's address) through it. Then FAUCET's own router
   (``faucet_vips``) on the shared VLAN, pinged from both hosts.
7. Per-host ip-ranges published in the dp descriptions, read back over faucetconfrpc and checked
   for overlap.

    python -m tests.multihost.experiments.stack [--keep] [--reuse]

``--reuse`` uses a rig already up (``python -m tests.multihost.rig up``); ``--keep`` leaves it up.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.multihost.rig import Rig, wait_until

HERE = Path(__file__).resolve().parent
STACK_BR = "dcstack"
TUNNEL_PORT = {"hosta": 101, "hostb": 102, "hostc": 103}  # the port that points at HOST, on every peer
STACK_DPID = {"hosta": 0xA0, "hostb": 0xB0, "hostc": 0xC0}
NET_DPID = {("net1", "hosta"): 0xA1, ("net1", "hostb"): 0xB1, ("net2", "hosta"): 0xA2}
SUBNET = "10.60.0.0/24"
GATEWAY = "10.60.0.1"
VIP = "10.60.0.254"
# per host: its containers' addresses (also its ip-range, published in the dp description)
IP_RANGE = {"hosta": "10.60.0.64/27", "hostb": "10.60.0.96/27"}
NUMBERS: dict[str, Any] = {}


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def yaml_text(doc: dict) -> str:
    import io

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(doc, out)
    return out.getvalue()


class Lab:
    """The experiment's view of the rig: what it made on each host, and the FAUCET files."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.hosts = [h.name for h in rig.spec.hosts]
        self.networks: dict[str, list[str]] = {h: [] for h in self.hosts}
        self.containers: dict[str, dict[str, dict[str, Any]]] = {h: {} for h in self.hosts}
        self.links: dict[str, set[str]] = {h: set() for h in self.hosts}  # tunnel peers in each file
        self.gateway_host: str | None = None
        self.lldp_interval: int | None = None  # dp lldp_beacon send_interval (FAUCET's default: 5 s)
        # give each stack dp one port that is not a stack port (its LOCAL port, on VLAN "anchor"), so
        # that a stack topology change restarts its stack ports warm instead of the whole dp cold
        self.anchor = False

    # -- OVS and containers ---------------------------------------------------------------------

    def vsctl(self, host: str, *args: str) -> str:
        return self.rig.exec(host, "ovs-vsctl", "--timeout=20", *args).stdout

    def bridge(self, host: str, name: str, dpid: int) -> None:
        controller = f"tcp:{self.rig.spec.controller_ip}:6653"
        self.vsctl(
            host,
            "--may-exist",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            f"other_config:datapath-id={dpid:016x}",
            "other_config:disable-in-band=true",
            "fail_mode=secure",
            "protocols=OpenFlow13",
            "--",
            "set-controller",
            name,
            controller,
        )

    def make_host(self, host: str) -> None:
        self.bridge(host, STACK_BR, STACK_DPID[host])
        for peer in self.hosts:
            if peer == host:
                continue
            remote = self.rig.host_spec(peer).underlay_ip.split("/")[0]
            self.vsctl(
                host,
                "--may-exist",
                "add-port",
                STACK_BR,
                f"vx-{peer}",
                "--",
                "set",
                "interface",
                f"vx-{peer}",
                "type=vxlan",
                f"options:remote_ip={remote}",
                f"ofport_request={TUNNEL_PORT[peer]}",
            )

    def add_network(self, host: str, net: str) -> None:
        index = len(self.networks[host])
        bridge = f"dcn-{net}"
        self.bridge(host, bridge, NET_DPID[(net, host)])
        self.vsctl(
            host,
            "--may-exist",
            "add-port",
            STACK_BR,
            f"pn-{net}",
            "--",
            "set",
            "interface",
            f"pn-{net}",
            "type=patch",
            f"options:peer=ps-{net}",
            f"ofport_request={10 + index}",
            "--",
            "--may-exist",
            "add-port",
            bridge,
            f"ps-{net}",
            "--",
            "set",
            "interface",
            f"ps-{net}",
            "type=patch",
            f"options:peer=pn-{net}",
            "ofport_request=1",
        )
        self.networks[host].append(net)

    def add_container(self, host: str, net: str, name: str, address: str, ofport: int) -> None:
        rig = self.rig
        rig.exec(host, "docker", "run", "-d", "--network", "none", "--name", name, "busybox", "sleep", "1d")
        pid = rig.exec(host, "docker", "inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        veth = f"v{name}"
        rig.exec(host, "ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}c")
        rig.exec(host, "ip", "link", "set", f"{veth}c", "netns", pid)
        ns = ["nsenter", "-t", pid, "-n"]
        rig.exec(host, *ns, "ip", "link", "set", f"{veth}c", "name", "eth0")
        rig.exec(host, *ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        rig.exec(host, *ns, "ip", "link", "set", "eth0", "up")
        rig.exec(host, *ns, "ethtool", "-K", "eth0", "tx", "off", check=False)
        rig.exec(host, "ip", "link", "set", veth, "up")
        self.vsctl(host, "add-port", f"dcn-{net}", veth, "--", "set", "interface", veth, f"ofport_request={ofport}")
        self.containers[host][name] = {"net": net, "ip": address, "pid": pid, "ofport": ofport}

    def ping(
        self, host: str, container: str, address: str, count: int = 1, interval: float = 0.2, wait: float = 1
    ) -> tuple[bool, float | None]:
        """(any reply, average rtt ms) from a container, with iputils ping in its netns."""
        pid = self.containers[host][container]["pid"]
        result = self.rig.exec(
            host,
            "nsenter",
            "-t",
            pid,
            "-n",
            "ping",
            "-q",
            "-c",
            str(count),
            "-i",
            str(interval),
            "-W",
            str(wait),
            address,
            check=False,
            timeout=count * interval + wait + 30,
        )
        match = re.search(r"= [\d.]+/([\d.]+)/", result.stdout)
        return result.returncode == 0, float(match.group(1)) if match else None

    # -- FAUCET files ---------------------------------------------------------------------------

    def host_doc(self, host: str) -> dict:
        """Host HOST's whole file: its stack dp and its network dps, nothing of any other host."""
        stack = f"stack@{host}"
        stack_ifaces: dict[int, Any] = {}
        dps: dict[str, Any] = {}
        for index, net in enumerate(self.networks[host]):
            net_dp = f"{net}@{host}"
            stack_ifaces[10 + index] = {"description": f"patch to {net_dp}", "stack": {"dp": net_dp, "port": 1}}
            ifaces: dict[int, Any] = {
                1: {"description": f"patch to {stack}", "stack": {"dp": stack, "port": 10 + index}}
            }
            for name, ctr in sorted(self.containers[host].items()):
                if ctr["net"] == net:
                    ifaces[ctr["ofport"]] = {"description": f"container {name}", "native_vlan": net}
            if self.gateway_host == host and net == "net1":
                ifaces[0xFFFFFFFE] = {"description": f"gateway {GATEWAY}", "native_vlan": net, "opstatus_reconf": False}
            description = f"dovecote network {net} on {host}; ip-range {IP_RANGE[host]}"
            if self.gateway_host == host and net == "net1":
                description += f"; gateway {GATEWAY}"
            dps[net_dp] = {
                "dp_id": NET_DPID[(net, host)],
                "hardware": "Open vSwitch",
                "description": description,
                "drop_spoofed_faucet_mac": False,
                "interfaces": ifaces,
            }
        for peer in sorted(self.links[host]):
            stack_ifaces[TUNNEL_PORT[peer]] = {
                "description": f"vxlan to {peer}",
                "stack": {"dp": f"stack@{peer}", "port": TUNNEL_PORT[host]},
            }
        stack_dp: dict[str, Any] = {
            "dp_id": STACK_DPID[host],
            "hardware": "Open vSwitch",
            "description": f"dovecote stack bridge of {host}",
            "drop_spoofed_faucet_mac": False,
            "interfaces": stack_ifaces,
        }
        if self.anchor:
            stack_ifaces[0xFFFFFFFE] = {"description": "anchor", "native_vlan": "anchor", "opstatus_reconf": False}
        if host == self.hosts[0]:
            stack_dp["stack"] = {"priority": 1}
        dps[stack] = stack_dp
        if self.lldp_interval:
            for dp in dps.values():
                dp["lldp_beacon"] = {"send_interval": self.lldp_interval, "max_per_interval": 10}
        return {"dps": dps}

    def rpc(self, host: str, *args: str, stdin: str | None = None) -> dict[str, Any]:
        result = self.rig.exec(host, "python3", "/root/rpc_client.py", *args, check=False, stdin=stdin)
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return {"code": "NO-OUTPUT", "stderr": result.stderr[-500:]}

    def publish(self, host: str, filename: str | None = None) -> dict[str, Any]:
        """Write HOST's whole file through faucetconfrpc from HOST itself."""
        return self.rpc(host, "set", filename or f"dovecote_{host}.yaml", stdin=yaml_text(self.host_doc(host)))

    # -- FAUCET's view --------------------------------------------------------------------------

    def metric(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        found = []
        for series, value in self.rig.faucet_metrics().items():
            if not series.startswith(name + "{") and series != name:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', series))
            if all(got.get(k) == v for k, v in labels.items()):
                found.append((got, value))
        return found

    def reload_count(self) -> float:
        return sum(v for _, v in self.metric("faucet_config_reload_requests_total"))

    def load_error(self) -> float:
        return sum(v for _, v in self.metric("faucet_config_load_error"))

    def stack_states(self) -> dict[str, float]:
        return {f"{lab['dp_name']}:{lab['port']}": v for lab, v in self.metric("port_stack_state")}

    def stack_up(self, ports: list[str]) -> bool:
        states = self.stack_states()
        return all(states.get(p) == 3 for p in ports)

    def restarts(self, dp: str) -> tuple[float, float]:
        warm = sum(v for _, v in self.metric("faucet_config_reload_warm_total", dp_name=dp))
        cold = sum(v for _, v in self.metric("faucet_config_reload_cold_total", dp_name=dp))
        return warm, cold

    def wait_reload_after(self, before: float, timeout: float = 30) -> float:
        """Wait for FAUCET's stat poll to process a reload after ``before``; returns seconds."""
        start = time.monotonic()
        wait_until(lambda: self.reload_count() > before, timeout=timeout, what="FAUCET to reload")
        return time.monotonic() - start


def operator_faucet_yaml(hosts: list[str], vips: bool = False) -> str:
    vlan: dict[str, Any] = {"vid": 100, "description": "dovecote network net1 (all hosts)"}
    if vips:
        vlan.update({"faucet_vips": [f"{VIP}/24"], "faucet_mac": "0e:00:00:00:60:fe"})
    return yaml_text(
        {
            "vlans": {"net1": vlan, "net2": {"vid": 200}, "anchor": {"vid": 4000}},
            "include-optional": [f"dovecote_{h}.yaml" for h in hosts],
        }
    )


def ranges_overlap(ranges: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs of hosts whose ip-ranges overlap (the check a reconciler makes before accepting)."""
    nets = {host: ipaddress.ip_network(cidr) for host, cidr in ranges.items()}
    names = sorted(nets)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if nets[a].overlaps(nets[b])]


def run_experiments(rig: Rig, lldp_interval: int | None = None, anchor: bool = False) -> None:
    lab = Lab(rig)
    lab.lldp_interval = lldp_interval
    lab.anchor = anchor
    NUMBERS["stack dps anchored by a non-stack port"] = anchor
    NUMBERS["lldp send_interval (s)"] = lldp_interval or "FAUCET default (5)"
    a, b = lab.hosts[0], lab.hosts[1]
    for host in lab.hosts:
        rig.exec(host, "sh", "-c", "cat > /root/rpc_client.py", stdin=(HERE / "rpc_client.py").read_text())
    rig.write_controller_file("faucet.yaml", operator_faucet_yaml(lab.hosts))

    # -- 1. bridges, tunnels, containers
    t0 = time.monotonic()
    for host in lab.hosts:
        lab.make_host(host)
        lab.add_network(host, "net1")
        base = int(IP_RANGE[host].split("/")[0].split(".")[-1])
        lab.add_container(host, "net1", f"{host[-1]}1", f"10.60.0.{base + 1}", 2)
        lab.add_container(host, "net1", f"{host[-1]}2", f"10.60.0.{base + 2}", 3)
    NUMBERS["bridges+tunnels+4 containers made (s)"] = round(time.monotonic() - t0, 1)
    say(
        "bridges, vxlan ports and containers made: "
        + json.dumps({h: lab.vsctl(h, "list-br").split() for h in lab.hosts})
    )

    # -- 2. faucetconfrpc: names it refuses, then the join handshake
    bad = lab.rpc(a, "set", f"dovecote-{a}.yaml", stdin="dps: {}\n")
    say(f"faucetconfrpc, file name with '-': {bad.get('code')} {bad.get('details', '')[-80:]}")
    NUMBERS["rpc set with '-' in the file name"] = bad.get("code")
    before = lab.reload_count()
    first = lab.publish(a)
    lab.wait_reload_after(before)
    say(f"{a} alone: rpc {first['code']} in {first['seconds']} s; FAUCET load_error={lab.load_error()}")
    NUMBERS["rpc SetConfigFile round trip (s)"] = first["seconds"]
    lab.links[b].add(a)
    before = lab.reload_count()
    half = lab.publish(b)
    lab.wait_reload_after(before)
    say(f"{b} links to {a} first: rpc {half['code']}; FAUCET load_error={lab.load_error()} (one-sided link)")
    NUMBERS["one-sided link: rpc code / FAUCET load_error"] = f"{half['code']} / {lab.load_error()}"
    lab.links[a].add(b)
    t_join = time.monotonic()
    before = lab.reload_count()
    done = lab.publish(a)
    lab.wait_reload_after(before)
    say(f"{a} adds the reverse port: rpc {done['code']}; FAUCET load_error={lab.load_error()}")
    ports = [
        f"stack@{a}:{TUNNEL_PORT[b]}",
        f"stack@{b}:{TUNNEL_PORT[a]}",
        f"stack@{a}:10",
        f"net1@{a}:1",
        f"stack@{b}:10",
        f"net1@{b}:1",
    ]
    wait_until(lambda: lab.stack_up(ports), timeout=120, what="stack ports UP")
    NUMBERS["reverse port written -> all stack ports UP (s)"] = round(time.monotonic() - t_join, 1)
    say(f"stack UP: {lab.stack_states()}")
    say(
        "stack metrics: "
        + json.dumps(
            {
                "faucet_stack_root_dpid": [v for _, v in lab.metric("faucet_stack_root_dpid")],
                "is_dp_stack_root": {lab_["dp_name"]: v for lab_, v in lab.metric("is_dp_stack_root")},
                "dp_status": {lab_["dp_name"]: v for lab_, v in lab.metric("dp_status")},
                "dp_root_hop_port": {lab_["dp_name"]: v for lab_, v in lab.metric("dp_root_hop_port")},
            }
        )
    )

    # -- 3. pings
    a1, a2, b1 = f"{a[-1]}1", f"{a[-1]}2", f"{b[-1]}1"
    ip_a2 = lab.containers[a][a2]["ip"]
    ip_b1 = lab.containers[b][b1]["ip"]
    wait_until(lambda: lab.ping(a, a1, ip_b1)[0], timeout=60, what=f"{a1} to ping {b1}")
    ok_in, rtt_in = lab.ping(a, a1, ip_a2, count=50, interval=0.05)
    ok_x, rtt_x = lab.ping(a, a1, ip_b1, count=50, interval=0.05)
    NUMBERS["ping rtt within host A, ms (50 pings)"] = rtt_in
    NUMBERS["ping rtt across A->B, ms (50 pings)"] = rtt_x
    big_ok, _ = lab.ping(a, a1, ip_b1)
    say(f"ping within {a}: {ok_in} {rtt_in} ms; across: {ok_x} {rtt_x} ms")
    # MTU: a full-size frame needs 1500 + 50 bytes of VXLAN on the underlay
    full = rig.exec(
        a,
        "nsenter",
        "-t",
        lab.containers[a][a1]["pid"],
        "-n",
        "ping",
        "-c",
        "2",
        "-W",
        "1",
        "-M",
        "do",
        "-s",
        "1472",
        ip_b1,
        check=False,
    )
    NUMBERS[f"1500-byte ping across (underlay MTU {rig.spec.underlay_mtu})"] = full.returncode == 0

    # -- 4. cut and heal
    pid = lab.containers[a][a1]["pid"]
    rig.exec(a, "sh", "-c", f"nsenter -t {pid} -n ping -D -O -i 0.1 -W 1 {ip_b1} > /root/cut.log 2>&1 &")
    wait_until(lambda: "bytes from" in rig.exec(a, "cat", "/root/cut.log").stdout, timeout=20, what="ping running")
    t_cut = float(rig.exec(a, "date", "+%s.%N").stdout)
    rig.cut(a)
    wait_until(lambda: not lab.stack_up(ports[:2]), timeout=120, interval=0.5, what="FAUCET to see the stack port down")
    NUMBERS["cut -> FAUCET marks stack port down (s)"] = round(time.time() - t_cut, 1)
    say(f"cut: stack states {lab.stack_states()}")
    t_restore = float(rig.exec(a, "date", "+%s.%N").stdout)
    rig.restore(a)
    wait_until(lambda: lab.stack_up(ports[:2]), timeout=120, interval=0.5, what="stack UP again")
    NUMBERS["restore -> FAUCET stack port UP (s)"] = round(time.time() - t_restore, 1)
    wait_until(
        lambda: _last_reply_after(rig.exec(a, "cat", "/root/cut.log").stdout, t_restore),
        timeout=60,
        what="pings to come back",
    )
    rig.exec(a, "pkill", "-f", f"ping -D -O -i 0.1 -W 1 {ip_b1}", check=False)
    log = rig.exec(a, "cat", "/root/cut.log").stdout
    last_before = max((t for t in _reply_times(log) if t < t_restore), default=None)
    first_after = min(t for t in _reply_times(log) if t > t_restore)
    NUMBERS["cut -> last reply (s)"] = round(last_before - t_cut, 2) if last_before else None
    NUMBERS["restore -> first reply (heal, s)"] = round(first_after - t_restore, 2)
    say(f"heal: first reply {first_after - t_restore:.2f} s after restore")

    # -- 5. a network added on A only: what happens to B's dps
    restarts_before = {dp: lab.restarts(dp) for dp in (f"stack@{b}", f"net1@{b}", f"stack@{a}", f"net1@{a}")}
    rig.exec(a, "sh", "-c", f"nsenter -t {pid} -n ping -D -O -i 0.1 -W 1 {ip_b1} > /root/add.log 2>&1 &")
    wait_until(lambda: "bytes from" in rig.exec(a, "cat", "/root/add.log").stdout, timeout=20, what="ping running")
    lab.add_network(a, "net2")
    lab.add_container(a, "net2", f"{a[-1]}3", "10.61.0.65", 2)
    before = lab.reload_count()
    t_add = float(rig.exec(a, "date", "+%s.%N").stdout)
    lab.publish(a)
    lab.wait_reload_after(before)
    wait_until(lambda: lab.stack_up(ports + [f"stack@{a}:11", f"net2@{a}:1"]), timeout=120, what="net2 stack link UP")
    NUMBERS["net2 written -> its patch stack link UP (s)"] = round(time.time() - t_add, 1)
    ok_after, _ = lab.ping(a, a1, ip_b1)
    rig.exec(a, "pkill", "-f", f"ping -D -O -i 0.1 -W 1 {ip_b1}", check=False)
    add_log = rig.exec(a, "cat", "/root/add.log").stdout
    NUMBERS["net1 pings lost while net2 was added on A"] = add_log.count("no answer yet")
    NUMBERS["restarts (warm, cold) caused by adding net2 on A"] = {
        dp: tuple(n - o for n, o in zip(lab.restarts(dp), old, strict=True)) for dp, old in restarts_before.items()
    }
    restarts = NUMBERS["restarts (warm, cold) caused by adding net2 on A"]
    say(f"net2 on {a}: restarts {restarts}; net1 ping after: {ok_after}")

    # -- 6a. one gateway (routed/nat mode on host A only) and NAT out
    lab.gateway_host = a
    rig.exec(a, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "dcn-net1")
    rig.exec(a, "ip", "link", "set", "dcn-net1", "up")
    rig.exec(a, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    rig.exec(a, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", SUBNET, "!", "-d", SUBNET, "-j", "MASQUERADE")
    before = lab.reload_count()
    lab.publish(a)
    lab.wait_reload_after(before)
    for host, ctr in ((a, a1), (b, b1)):
        rig.exec(
            host,
            "nsenter",
            "-t",
            lab.containers[host][ctr]["pid"],
            "-n",
            "ip",
            "route",
            "replace",
            "default",
            "via",
            GATEWAY,
        )
    outside = rig.spec.controller_ip
    gw_b = wait_until(lambda: lab.ping(b, b1, GATEWAY)[0], timeout=60, what=f"{b1} to ping the gateway on {a}")
    nat_b = wait_until(lambda: lab.ping(b, b1, outside)[0], timeout=60, what=f"{b1} to reach {outside} through NAT")
    nat_a = wait_until(lambda: lab.ping(a, a1, outside)[0], timeout=60, what=f"{a1} to reach {outside} through NAT")
    NUMBERS["container on B pings the gateway on A / NAT out (B, A)"] = (gw_b, nat_b, nat_a)
    say(f"single gateway on {a}: {b1} -> gateway {gw_b}, -> outside via NAT {nat_b}; {a1} -> outside {nat_a}")

    # -- 6b. FAUCET's router: a VIP on the shared VLAN
    before = lab.reload_count()
    rig.write_controller_file("faucet.yaml", operator_faucet_yaml(lab.hosts, vips=True))
    lab.wait_reload_after(before)
    vip_a = wait_until(lambda: lab.ping(a, a1, VIP)[0], timeout=60, what=f"{a1} to ping the VIP")
    try:
        vip_b = wait_until(lambda: lab.ping(b, b1, VIP)[0], timeout=60, what=f"{b1} to ping the VIP")
    except TimeoutError:
        vip_b = False
    NUMBERS["faucet_vips VIP answers from A, B"] = (vip_a, vip_b)
    say(f"faucet_vips {VIP}: from {a} {vip_a}, from {b} {vip_b}; load_error={lab.load_error()}")
    wait_until(lambda: lab.ping(a, a1, ip_b1)[0], timeout=60, what="cross-host ping with the router on")
    NUMBERS["cross-host ping with the VIP VLAN"] = True

    # -- 7. ip-ranges read back over faucetconfrpc and checked
    published = {}
    for host in lab.hosts:
        doc = YAML(typ="safe", pure=True).load(lab.rpc(b, "get", f"dovecote_{host}.yaml")["yaml"])
        for dp in doc["dps"].values():
            match = re.search(r"ip-range (\S+)", dp.get("description", ""))
            if match and "net1" in dp["description"]:
                published[host] = match.group(1).rstrip(";")
    NUMBERS["ip-ranges read over faucetconfrpc"] = published
    NUMBERS["overlaps"] = ranges_overlap(published)
    NUMBERS["overlaps if hostb took 10.60.0.64/26"] = ranges_overlap({**published, b: "10.60.0.64/26"})
    NUMBERS["rpc GetDpNames (faucet.yaml only)"] = lab.rpc(b, "dpnames").get("dp_names")
    NUMBERS["rpc GetAclNames (validates the tree)"] = lab.rpc(b, "aclnames").get("code")


def _reply_times(log: str) -> list[float]:
    return [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", log, re.M)]


def _last_reply_after(log: str, t: float) -> bool:
    return any(x > t for x in _reply_times(log))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true", help="use the rig that is up")
    parser.add_argument("--keep", action="store_true", help="leave the rig up")
    parser.add_argument("--lldp-interval", type=int, help="LLDP beacon send_interval on every dp (s)")
    parser.add_argument("--anchor", action="store_true", help="give each stack dp a non-stack (LOCAL) port")
    args = parser.parse_args()
    rig = Rig()
    if not args.reuse:
        rig.up()
        say("rig up: " + ", ".join(f"{k} {v:.1f} s" for k, v in rig.timings.items()))
    try:
        run_experiments(rig, args.lldp_interval, args.anchor)
    finally:
        print("\nnumbers:")
        for key, value in NUMBERS.items():
            print(f"  {key}: {value}")
        if not args.keep:
            rig.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
