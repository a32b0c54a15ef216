"""Input hygiene, errors in the user's words, and the plugin socket (docs/security.md).

Requests are sent to the running driver's socket as Docker would send them, with one field wrong:
each gets a clear error and changes nothing on the host.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.stack.stack import Factory, Stack, run, short_id, wait_until

NOBODY = 65534


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def call(path: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """One call as Docker makes it (no Content-Type), and the JSON reply."""
    connection = _Unix(path)
    try:
        payload = json.dumps(body).encode()
        headers = {"Content-Length": str(len(payload))}
        connection.request("POST", f"/NetworkDriver.{method}", body=payload, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def host_state(*words: str) -> tuple[list[str], list[str], list[str]]:
    """What a request could change, scoped to what it names (other tests and drivers on this host
    change the rest meanwhile): OVS bridges and interfaces, iptables rules and links whose names or
    text hold one of ``words`` (device names, a subnet, a dpid)."""
    ovs = []
    for table in ("Bridge", "Interface"):
        listing = run("ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", table).stdout
        ovs += [str(row) for row in json.loads(listing)["data"] if any(w in str(row) for w in words)]
    rules = "".join(run("iptables", "-t", t, "-S").stdout for t in ("raw", "filter", "nat")).splitlines()
    links = [x.split(":")[1].strip().split("@")[0] for x in run("ip", "-o", "link").stdout.splitlines()]
    return (
        sorted(ovs),
        # not the isolation chain: its rules about a bridge follow the other networks on this host
        sorted(r for r in rules if any(w in r for w in words) and "DOVECOTE-ISOLATION" not in r),
        sorted(n for n in links if any(w in n for w in words)),
    )


def docker_id(seed: str) -> str:
    return (seed * 64)[:64]


def network_request(network_id: str, pool: object = "10.199.250.0/24", gateway: object = "10.199.250.1/24",
                    generic: object = None, key: str = "IPv4Data") -> dict[str, Any]:  # fmt: skip
    generic = {"ovs.bridge.mode": "nat", "ovs.bridge.dpid": "0x7e57d1"} if generic is None else generic
    return {"NetworkID": network_id, "Options": {"com.docker.network.generic": generic},
            key: [{"AddressSpace": "LocalDefault", "Pool": pool, "Gateway": gateway}]}  # fmt: skip


NEW = docker_id("a7")
MALFORMED_NETWORKS = [
    (network_request("../../etc/passwd"), "NetworkID '../../etc/passwd' is not a Docker ID (64 lower-case hex digits)"),
    (network_request(NEW.upper()), "is not a Docker ID"),
    (network_request(NEW[:63]), "is not a Docker ID"),
    (network_request(NEW, pool="10.199.250.0/24 -j ACCEPT"),
     "IPv4Data: pool '10.199.250.0/24 -j ACCEPT' is not a network"),
    (network_request(NEW, pool="10.199.250.7/24"), "IPv4Data: pool '10.199.250.7/24' is not a network"),
    (network_request(NEW, pool=["10.0.0.0/8"]), "IPv4Data: pool ['10.0.0.0/8'] is not a network"),
    (network_request(NEW, gateway="10.1.1.1/24"),
     "IPv4Data: gateway '10.1.1.1/24' is not an address of pool 10.199.250.0/24"),
    (network_request(NEW, gateway="-j ACCEPT"), "IPv4Data: gateway '-j ACCEPT' of pool 10.199.250.0/24:"),
    (network_request(NEW, pool="fd00:1::/64", gateway=""), "IPv4Data: pool fd00:1::/64 is not an IPv4 network"),
    (network_request(NEW, generic=["ovs.bridge.dpid=1"]),
     "com.docker.network.generic ['ovs.bridge.dpid=1'] is not an object"),
]  # fmt: skip


@pytest.mark.parametrize(("request_body", "message"), MALFORMED_NETWORKS, ids=range(len(MALFORMED_NETWORKS)))
def test_a_malformed_create_network_gets_a_clear_error_and_changes_nothing(
    stack: Stack, request_body: dict[str, Any], message: str
) -> None:
    network_id = str(request_body["NetworkID"])
    words = ("dcb" + network_id[:12], "10.199.250.", "0x7e57d1", network_id[:12])
    before = host_state(*words)
    reply = call(stack.socket, "CreateNetwork", request_body)
    assert message in reply.get("Err", ""), reply
    assert host_state(*words) == before


def test_malformed_endpoint_requests_get_a_clear_error_and_change_nothing(stack: Stack, make: Factory) -> None:
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    endpoint = run("docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net.name}").EndpointID}}}}',
                   c1.id).stdout.strip()  # fmt: skip
    fresh = docker_id("e9")
    cases = [
        ("CreateEndpoint", {"NetworkID": net.id, "EndpointID": "1913b545ef2e"}, "EndpointID '1913b545ef2e' is not"),
        ("CreateEndpoint", {"NetworkID": net.id, "EndpointID": fresh, "Interface": {"Address": "10.2.3.4/24; x"}},
         "Interface.Address '10.2.3.4/24; x' is not an address with a prefix length"),
        ("CreateEndpoint", {"NetworkID": net.id, "EndpointID": fresh, "Interface": {"MacAddress": "02:42:zz"}},
         "Interface.MacAddress '02:42:zz' is not a MAC address"),
        ("CreateEndpoint", {"NetworkID": net.id, "EndpointID": fresh, "Interface": "eth0"},
         "Interface 'eth0' is not an object"),
        ("ProgramExternalConnectivity", {"NetworkID": net.id, "EndpointID": endpoint, "Options": {
            "com.docker.network.portmap": [{"Proto": 6, "Port": 80, "HostPort": 8080, "HostIP": "0/0 -j ACCEPT"}]}},
         "com.docker.network.portmap: HostIP '0/0 -j ACCEPT' is not an address"),
        ("ProgramExternalConnectivity", {"NetworkID": net.id, "EndpointID": endpoint, "Options": {
            "com.docker.network.portmap": [{"Proto": 6, "Port": "80,81", "HostPort": 8080}]}},
         "com.docker.network.portmap: Port '80,81' is not a port number"),
        ("Join", {"NetworkID": net.id, "EndpointID": endpoint[:-1] + "X"}, "EndpointID"),
    ]  # fmt: skip
    words = (net.bridge, net.id[:12], endpoint[:12], fresh[:12], "1913b545ef2e", net.subnet.rsplit(".", 1)[0] + ".")
    before = host_state(*words)
    for method, body, message in cases:
        reply = call(stack.socket, method, body)
        assert message in reply.get("Err", ""), (method, reply)
        assert host_state(*words) == before, method
    wait_until(lambda: c1.pings(net.gateway), 30, "the container to be untouched")


def test_an_id_sharing_twelve_digits_never_touches_another_network(stack: Stack, make: Factory) -> None:
    """Device names hold 12 of an ID's 64 digits: a request naming another ID with the same 12 digits
    must not delete, nor take over, what belongs to the first."""
    net = make.network(mode="nat")
    c1 = make.container(net.name)
    endpoint = run("docker", "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net.name}").EndpointID}}}}',
                   c1.id).stdout.strip()  # fmt: skip
    twin_net, twin_endpoint = net.id[:12] + docker_id("f")[12:], endpoint[:12] + docker_id("f")[12:]
    assert twin_net != net.id and twin_endpoint != endpoint
    words = (net.bridge, net.id[:12], endpoint[:12], "10.199.250.", "0x7e57d1")
    before = host_state(*words)
    assert call(stack.socket, "DeleteEndpoint", {"NetworkID": net.id, "EndpointID": twin_endpoint}) == {}
    assert call(stack.socket, "DeleteNetwork", {"NetworkID": twin_net}) == {}
    assert host_state(*words) == before, "a request for another ID removed something"
    taken = call(stack.socket, "CreateNetwork", network_request(twin_net))
    assert f"bridge {net.bridge} already belongs to network {net.name} ({net.id[:12]})" in taken.get("Err", ""), taken
    assert host_state(*words) == before
    wait_until(lambda: c1.pings(net.gateway), 30, "the container to keep its network")


def create_error(stack: Stack, *options: str) -> str:
    name = short_id("dctname")
    result = run("docker", "network", "create", name, "-d", stack.driver_name, *options, check=False)
    if result.returncode == 0:
        run("docker", "network", "rm", name, check=False)
        return ""
    return result.stderr


def test_errors_name_other_networks_by_their_docker_name(stack: Stack, make: Factory) -> None:
    """The name comes from the driver's last listing of Docker's networks (its watcher thread; never a
    call to Docker while answering), so the error may name the ID alone for a moment after a create."""
    net = make.network(mode="nat")
    expected = f"remote: ovs.bridge.dpid '{net.dpid:#x}': already used by network {net.name} ({net.id[:12]})"
    error = wait_until(lambda: (e := create_error(stack, "-o", f"ovs.bridge.dpid={net.dpid:#x}",
                                                  "--subnet", "10.198.9.0/24")) and net.name in e and e,
                       15, "the dpid error to name the network")  # fmt: skip
    assert expected in error, error
    # A host port published by a container of another network.
    port = 28000 + net.dpid % 997
    make.container(net.name, "-p", f"{port}:80")
    other = make.network(mode="nat")
    name = short_id("dctdup")
    make.containers.append(name)
    result = run("docker", "run", "-td", "--name", name, f"--net={other.name}", "-p", f"{port}:80", "busybox",
                 check=False)  # fmt: skip
    assert result.returncode != 0
    assert "is already published by endpoint" in result.stderr
    assert f"on network {net.name} ({net.id[:12]})" in result.stderr, result.stderr


def as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], user=NOBODY, group=NOBODY, extra_groups=[],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


ACTIVATE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else {path!r})
except OSError as exc:
    print("refused:", exc.strerror); raise SystemExit
s.settimeout(10)
reply = ""
try:  # HTTP/1.0: the server closes the connection after its answer
    s.sendall(b"POST /Plugin.Activate HTTP/1.0\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n")
    while chunk := s.recv(4096):
        reply += chunk.decode(errors="replace")
except (BrokenPipeError, ConnectionResetError):
    pass
print("answered: " + reply.splitlines()[-1] if reply else "closed without an answer")
"""


def test_the_plugin_socket_is_root_s_only(stack: Stack) -> None:
    info = os.stat(stack.socket)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert as_nobody(ACTIVATE.format(path=stack.socket)).stdout.startswith("refused: Permission denied")
    # Defence in depth: a driver serving a path other users can reach, its socket made world-writable
    # by mistake, still answers root only.
    directory = Path(tempfile.mkdtemp(prefix="dctsock", dir="/tmp"))  # /tmp/pytest-of-root is root's only
    directory.chmod(0o755)
    path = str(directory / "d.sock")
    driver = subprocess.Popen([sys.executable, "-m", "dovecote.cli", "driver", "--socket", path],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_until(lambda: os.path.exists(path), 60, "the second driver's socket")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert as_nobody(ACTIVATE.format(path=path)).stdout.startswith("refused: Permission denied")
        os.chmod(path, 0o666)
        assert as_nobody(ACTIVATE.format(path=path)).stdout.strip() == "closed without an answer"
        root = subprocess.run([sys.executable, "-c", ACTIVATE.format(path=path)], capture_output=True, text=True,
                              timeout=60, check=False).stdout  # fmt: skip
        assert "NetworkDriver" in root, root
    finally:
        driver.terminate()
        output = driver.communicate(timeout=60)[0]
        shutil.rmtree(directory, ignore_errors=True)
    assert "refused a connection" in output and f"from uid {NOBODY}" in output, output


def test_a_file_at_the_socket_path_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "ovsx.sock"
    path.write_text("precious\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "dovecote.cli", "driver", "--socket", str(path)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 1  # EXIT_PROBLEMS, as every daemon that cannot start (dovecote/cli.py)
    (line,) = result.stderr.splitlines()
    assert line.startswith("dovecote driver: error: cannot start the driver: ")
    assert f"{path} exists and is a regular file, not a socket" in line
    assert "Traceback" not in result.stderr
    assert path.read_text() == "precious\n"
    assert time.monotonic() - started < 60
