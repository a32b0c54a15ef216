"""What a container on a nat/routed dovecote network can reach, compared with Docker's bridge driver
(docs/security.md): not the host's loopback, not other container networks' unpublished ports, in
either direction; published ports and the outside world still.

Every "cannot" is checked against a "can" on the same path, so a check that fails for another reason
(FAUCET not ready, no route) shows up as a failed "can", not as a passing "cannot".
"""

from __future__ import annotations

import contextlib
import socket
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from tests.stack.stack import (
    Container,
    Factory,
    Network,
    Stack,
    endpoint_port,
    iptables_rules,
    ofport,
    run,
    short_id,
    wait_until,
)
from tests.stack.test_driver_publish import echo_server, ns_tcp_echo, tcp_echo

# Sent from inside a container's network namespace: a hand-made TCP SYN in an Ethernet frame
# addressed to the gateway's MAC, as a container with CAP_NET_RAW (Docker's default) can send it.
# Prints the answer's TCP flags ("SA" for SYN+ACK, "RA" for a reset) or "silent".
RAW_SYN = textwrap.dedent(
    """
    import random, socket, struct, sys, time
    iface, gateway_mac, destination, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    own_mac = open(f"/sys/class/net/{iface}/address").read().strip()
    source = sys.argv[5]
    def checksum(data):
        if len(data) % 2:
            data += b"\\0"
        total = sum(struct.unpack(f"!{len(data) // 2}H", data))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF
    src, dst = socket.inet_aton(source), socket.inet_aton(destination)
    sport, seq = random.randint(30000, 60000), random.randint(0, 2**32 - 1)
    tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535), 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    frame = bytes.fromhex(gateway_mac.replace(":", "")) + bytes.fromhex(own_mac.replace(":", "")) + b"\\x08\\x00"
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((iface, 0))
    sock.settimeout(0.2)
    deadline = time.monotonic() + 3
    sock.send(frame + ip + tcp)
    while time.monotonic() < deadline:
        try:
            packet = sock.recv(2048)[14:]
        except socket.timeout:
            continue
        if len(packet) < 40 or packet[9] != 6 or packet[12:16] != dst:
            continue
        header = (packet[0] & 0x0F) * 4
        their_port, my_port = struct.unpack("!HH", packet[header:header + 4])
        if their_port == port and my_port == sport:
            flags = packet[header + 13]
            print(("S" if flags & 0x02 else "") + ("R" if flags & 0x04 else "") + ("A" if flags & 0x10 else ""))
            sys.exit(0)
    print("silent")
    """
)


def pid_of(container: Container) -> str:
    return run("docker", "inspect", "-f", "{{.State.Pid}}", container.id).stdout.strip()


def raw_syn(container: Container, network: Network, destination: str, port: int) -> str:
    """The answer to a SYN the container sends to ``destination`` through its gateway's MAC."""
    gateway_mac = open(f"/sys/class/net/{network.bridge}/address").read().strip()
    argv = ["nsenter", f"--net=/proc/{pid_of(container)}/ns/net", sys.executable, "-c", RAW_SYN,
            "eth0", gateway_mac, destination, str(port), container.ip(network.name)]  # fmt: skip
    return run(*argv, timeout=30).stdout.strip()


@contextmanager
def loopback_listener() -> Iterator[int]:
    """A TCP listener on the host's 127.0.0.1 only (as FAUCET's OpenFlow port is)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_container_cannot_reach_the_hosts_loopback_through_its_gateway(stack: Stack, make: Factory) -> None:
    """CVE-2020-8558's pattern: route_localnet is on (for -p 127.0.0.1:...), so without the raw-table
    DROP the host would route a packet addressed to 127.0.0.1 arriving on the bridge to its loopback."""
    net = make.network(mode="nat")
    published = 24000 + net.dpid % 997
    c1 = make.container(net.name, "-p", f"127.0.0.1:{published}:7000")
    stack.wait_port_loaded(net.dp, ofport(endpoint_port(c1, net.name)))
    wait_until(lambda: c1.pings(net.gateway), 30, "c1 to reach its gateway")
    assert run("sysctl", "-n", f"net.ipv4.conf.{net.bridge}.route_localnet").stdout.strip() == "1"
    with loopback_listener() as port:
        # The same hand-made SYN reaches the host when it is addressed to the gateway (a reset: nothing
        # listens on the gateway address)...
        assert raw_syn(c1, net, net.gateway, port) == "RA"
        # ...and gets nothing at all when it is addressed to the host's loopback.
        assert raw_syn(c1, net, "127.0.0.1", port) == "silent"
    assert f"-d 127.0.0.0/8 -i {net.bridge}" in iptables_rules("raw")
    # Publishing on the host's loopback still works: the host reaches the container.
    with echo_server(c1, 7000):
        assert wait_until(lambda: tcp_echo("127.0.0.1", published), 30, "the 127.0.0.1 port") == "pong:tcp"


def connect_from(container: Container, address: str, port: int) -> str:
    """A TCP exchange from inside the container's namespace: the echo's answer, or "" (no connection)."""
    code = (
        "import socket\n"
        "try:\n"
        f"    s = socket.create_connection(({address!r}, {port}), timeout=2); s.sendall(b'tcp'); "
        "print(s.recv(100).decode())\n"
        "except OSError:\n"
        "    print('')\n"
    )
    argv = ["nsenter", f"--net=/proc/{pid_of(container)}/ns/net", sys.executable, "-c", code]
    return run(*argv, timeout=30).stdout.strip()


def docker_bridge_network(make: Factory) -> tuple[str, str]:
    """A network of Docker's own bridge driver; returns its name and its gateway address."""
    name = short_id("dctdbr")
    network_id = run("docker", "network", "create", "-d", "bridge", name).stdout.strip()
    make.networks.append(network_id)
    gateway = run("docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", name).stdout.strip()
    return name, gateway


PUBLISHED, UNPUBLISHED = 7000, 7001
"""The container ports each test container answers on: the first is published, the second is not."""


@contextmanager
def echo_servers(*containers: Container) -> Iterator[None]:
    """Echo servers on both ports of every container, for the duration."""
    with contextlib.ExitStack() as stack:
        for container in containers:
            stack.enter_context(echo_server(container, PUBLISHED))
            stack.enter_context(echo_server(container, UNPUBLISHED))
        yield


def test_nat_containers_and_docker_bridge_containers_reach_only_each_others_published_ports(
    stack: Stack, make: Factory
) -> None:
    """Both ways between a dovecote nat network, another one, and a network of Docker's bridge driver."""
    net_a, net_b = make.network(mode="nat"), make.network(mode="nat")
    seed = net_a.dpid % 997
    a1 = make.container(net_a.name, "-p", f"{25000 + seed}:{PUBLISHED}")
    b1 = make.container(net_b.name, "-p", f"{26000 + seed}:{PUBLISHED}")
    docker_net, docker_gateway = docker_bridge_network(make)
    # Isolated from the moment Docker made it, not from the driver's next look at Docker's networks:
    # net_a's packets pass through Docker's own isolation chain, where Docker put the new bridge's DROP.
    docker_bridge = "br-" + run("docker", "network", "inspect", "-f", "{{.Id}}", docker_net).stdout.strip()[:12]
    filter_rules = iptables_rules("filter").splitlines()
    assert f"-A DOCKER-ISOLATION-STAGE-2 -o {docker_bridge} -j DROP" in filter_rules
    assert any(r.startswith(f"-A DOVECOTE-ISOLATION -i {net_a.bridge} ") and r.endswith("-j DOCKER-ISOLATION-STAGE-2")
               for r in filter_rules), filter_rules  # fmt: skip
    d1 = make.container(docker_net, "-p", f"{27000 + seed}:{PUBLISHED}")
    for c, net in ((a1, net_a), (b1, net_b)):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    a_ip, b_ip, d_ip = a1.ip(net_a.name), b1.ip(net_b.name), d1.ip(docker_net)
    ns, outside = make.outside_host()
    run("ip", "-n", ns, "route", "add", net_a.subnet, "via", outside.rsplit(".", 1)[0] + ".1")
    with echo_servers(a1, b1, d1):
        # What still works: published ports, from every network, and the outside world.
        assert wait_until(lambda: connect_from(a1, net_a.gateway, 27000 + seed), 30, "a1 to d1's published port")
        assert wait_until(lambda: connect_from(a1, net_a.gateway, 26000 + seed), 30, "a1 to b1's published port")
        assert wait_until(lambda: connect_from(d1, docker_gateway, 25000 + seed), 30, "d1 to a1's published port")
        assert wait_until(lambda: a1.pings(outside), 30, "a1 to reach the outside world")
        assert connect_from(a1, a_ip, UNPUBLISHED) == "pong:tcp"  # the echo answers at all
        # What does not: another container network's unpublished ports, either way.
        assert connect_from(a1, d_ip, UNPUBLISHED) == "", "a nat container reached a Docker bridge container"
        assert connect_from(d1, a_ip, UNPUBLISHED) == "", "a Docker bridge container reached a nat container"
        assert connect_from(a1, b_ip, UNPUBLISHED) == "", "a nat container reached another dovecote network"
        assert connect_from(b1, a_ip, UNPUBLISHED) == "", "a nat container reached another dovecote network"
        # Nor a published port's container end addressed directly: that is not a published (DNATed)
        # connection. Not from another network, nor from outside with a route to the subnet.
        assert connect_from(a1, d_ip, PUBLISHED) == ""
        assert connect_from(b1, a_ip, PUBLISHED) == ""
        assert ns_tcp_echo(ns, a_ip, PUBLISHED) == ""


def test_routed_containers_are_reached_from_outside_but_not_from_other_container_networks(
    stack: Stack, make: Factory
) -> None:
    routed, other = make.network(mode="routed"), make.network(mode="nat")
    r1, n1 = make.container(routed.name), make.container(other.name)
    docker_net, _ = docker_bridge_network(make)
    d1 = make.container(docker_net)
    for c, net in ((r1, routed), (n1, other)):
        stack.wait_port_loaded(net.dp, ofport(endpoint_port(c, net.name)))
    r_ip, d_ip = r1.ip(routed.name), d1.ip(docker_net)
    ns, outside = make.outside_host()
    run("ip", "-n", ns, "route", "add", routed.subnet, "via", outside.rsplit(".", 1)[0] + ".1")
    with echo_servers(r1, n1, d1):
        assert wait_until(lambda: ns_tcp_echo(ns, r_ip, UNPUBLISHED), 30, "the outside to reach r1 by its address")
        assert wait_until(lambda: r1.pings(outside), 30, "r1 to reach the outside world")
        assert connect_from(d1, r_ip, UNPUBLISHED) == "", "a Docker bridge container reached a routed container"
        assert connect_from(r1, d_ip, UNPUBLISHED) == "", "a routed container reached a Docker bridge container"
        assert connect_from(n1, r_ip, UNPUBLISHED) == "", "a nat container reached a routed network"
        assert connect_from(r1, n1.ip(other.name), UNPUBLISHED) == "", "a routed container reached a nat network"


def test_isolation_follows_networks_as_they_come_and_go(stack: Stack, make: Factory) -> None:
    """A Docker network made after the dovecote one is isolated too, and a deleted network's rules go."""
    net = make.network(mode="nat")
    docker_net, _ = docker_bridge_network(make)
    device = "br-" + run("docker", "network", "inspect", "-f", "{{.Id}}", docker_net).stdout.strip()[:12]
    rule = f"-i {net.bridge} -o {device} "
    wait_until(lambda: rule in iptables_rules("filter"), 30, "the new Docker bridge to be isolated")
    run("docker", "network", "rm", net.name)
    wait_until(lambda: f"-o {net.bridge} " not in iptables_rules("filter"), 30, "the rules about the bridge to go")
    assert f"dovecote:{net.bridge}" not in iptables_rules("filter") + iptables_rules("raw")
