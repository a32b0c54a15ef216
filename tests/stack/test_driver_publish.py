"""``docker run -p`` on nat networks: the driver publishes on the host's own addresses, tcp and udp."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from tests.stack.stack import Container, Factory, Stack, endpoint_port, iptables_rules, ofport, run, wait_until

# An echo server for tcp and udp, run inside the container's network namespace (busybox has no UDP
# server): it answers "pong:<what it got>" so a reply proves the packet reached the container.
ECHO = textwrap.dedent(
    """
    import socket, sys, threading
    port = int(sys.argv[1])
    def tcp():
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen()
        while True:
            c, _ = s.accept(); c.sendall(b"pong:" + c.recv(100)); c.close()
    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(100); s.sendto(b"pong:" + data, peer)
    threading.Thread(target=tcp, daemon=True).start()
    print("ready", flush=True)
    udp()
    """
)


@contextmanager
def echo_server(container: Container, port: int) -> Iterator[None]:
    pid = run("docker", "inspect", "-f", "{{.State.Pid}}", container.id).stdout.strip()
    proc = subprocess.Popen(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", ECHO, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield
    finally:
        proc.kill()
        proc.wait(10)


def tcp_echo(address: str, port: int) -> str:
    with socket.create_connection((address, port), timeout=2) as sock:
        sock.sendall(b"tcp")
        return sock.recv(100).decode()


def udp_echo(address: str, port: int) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.sendto(b"udp", (address, port))
        return sock.recvfrom(100)[0].decode()


def ns_tcp_echo(ns: str, address: str, port: int) -> str:
    code = (
        f"import socket; s=socket.create_connection(({address!r},{port}),timeout=2); "
        "s.sendall(b'tcp'); print(s.recv(100).decode())"
    )
    return run("ip", "netns", "exec", ns, sys.executable, "-c", code, check=False, timeout=10).stdout.strip()


def ns_udp_echo(ns: str, address: str, port: int) -> str:
    code = (
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); "
        f"s.sendto(b'udp',({address!r},{port})); print(s.recvfrom(100)[0].decode())"
    )
    return run("ip", "netns", "exec", ns, sys.executable, "-c", code, check=False, timeout=10).stdout.strip()


def host_address() -> str:
    """An address of this host on a non-loopback interface that is not a container bridge."""
    for line in run("ip", "-4", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        name, cidr = fields[1], fields[3]
        if name != "lo" and not name.startswith(("docker", "dcb", "br-")):
            return cidr.split("/")[0]
    raise AssertionError("no host address found")


def test_published_ports_reach_the_container_and_go_away_with_it(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    tcp_port, udp_port = 20000 + ofport_seed(net.dpid), 21000 + ofport_seed(net.dpid)
    c1 = make.container(net.name, "-p", f"{tcp_port}:7000", "-p", f"{udp_port}:7000/udp")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    tag = f"dovecote:{net.bridge}:"
    assert f"--dport {tcp_port}" in iptables_rules("nat") and tag in iptables_rules("nat")
    ns, outside = make.outside_host()
    outside_gw = outside.rsplit(".", 1)[0] + ".1"  # the host's own address on the outside link

    with echo_server(c1, 7000):
        for address in ("127.0.0.1", host_address()):
            assert wait_until(lambda a=address: tcp_echo(a, tcp_port), 30, f"tcp via {address}") == "pong:tcp"
            assert wait_until(lambda a=address: udp_echo(a, udp_port), 30, f"udp via {address}") == "pong:udp"
        # From another machine (a namespace) to the host's address on its link: PREROUTING + FORWARD.
        assert wait_until(lambda: ns_tcp_echo(ns, outside_gw, tcp_port), 30, "tcp from outside") == "pong:tcp"
        assert wait_until(lambda: ns_udp_echo(ns, outside_gw, udp_port), 30, "udp from outside") == "pong:udp"
        # The mapping is per protocol: tcp on the udp port is not forwarded.
        assert ns_tcp_echo(ns, outside_gw, udp_port) == ""

    # The mapping is recorded in OVSDB (the driver's only state).
    ids = run("ovs-vsctl", "get", "Interface", endpoint_port(c1, net.name), "external_ids:dovecote-portmap").stdout
    assert str(tcp_port) in ids and str(udp_port) in ids

    run("docker", "rm", "-f", c1.name)
    for table in ("nat", "filter"):
        assert tag not in iptables_rules(table)
    assert f"dovecote:{net.bridge}" in iptables_rules("nat")  # the network's own rules stay


def test_a_host_port_published_twice_is_refused(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    port = 22000 + ofport_seed(net.dpid)
    make.container(net.name, "-p", f"{port}:80")
    name = "dctdup" + str(port)
    make.containers.append(name)
    result = run(
        "docker", "run", "-td", "--name", name, f"--net={net.name}", "-p", f"{port}:80", "busybox", check=False
    )
    assert result.returncode != 0
    assert f"remote: host port {port}/tcp is already published by endpoint" in result.stderr
    # Docker tore the failed endpoint down (Leave, DeleteEndpoint): only the first container's port is left.
    assert len([p for p in run("ovs-vsctl", "list-ports", net.bridge).stdout.split() if p.startswith("dch")]) == 1


def ofport_seed(dpid: int) -> int:
    """A host port offset unlikely to collide with a parallel test run (networks get random dpids)."""
    return dpid % 997
