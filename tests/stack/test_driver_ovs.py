"""The OVSDB adapter on the real ovsdb-server: typed rows out, and every failure a BackendError.

The bridge here carries no dovecote contract, so no driver on this host (tests run several) takes it
for one of its networks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from dovecote.driver.errors import BackendError
from dovecote.driver.ovs import BridgeRow, InterfaceRow, Ovs
from tests.stack.stack import run


@pytest.fixture(scope="module")
def ovs() -> Ovs:
    return Ovs()


@pytest.fixture
def bridge(ovs: Ovs) -> Iterator[str]:
    name = "dctbr" + secrets.token_hex(4)
    ovs.add_bridge(name, {"dovecote-test": "1"}, "netdev", f"{secrets.randbits(48) | 1 << 50:016x}", ())
    try:
        yield name
    finally:
        run("ovs-vsctl", "--if-exists", "del-br", name, check=False)


@pytest.fixture
def veth() -> Iterator[str]:
    name = "dctv" + secrets.token_hex(3)
    run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    try:
        yield name
    finally:
        run("ip", "link", "del", name, check=False)


def test_rows_are_typed(ovs: Ovs, bridge: str, veth: str) -> None:
    assert ovs.add_port(bridge, veth, {"dovecote-test": "port"}, 42) == 42
    assert BridgeRow(bridge, {"dovecote-test": "1"}, "netdev") in ovs.list_bridges()
    row = InterfaceRow(veth, ofport=42, ofport_request=42, external_ids={"dovecote-test": "port"}, type="")
    assert ovs.interfaces(bridge) == [row]
    assert ovs.find_interface(veth) == row
    assert ovs.port_bridge(veth) == bridge
    assert ovs.bridge_exists(bridge)
    ovs.set_interface_ids(veth, {"dovecote-test": "changed", "other": "x"})
    found = ovs.find_interface(veth)
    assert found is not None and found.external_ids == {"dovecote-test": "changed", "other": "x"}
    ovs.set_interface_ids(veth, {"other": "y"})  # merged: the keys not given stay
    found = ovs.find_interface(veth)
    assert found is not None and found.external_ids == {"dovecote-test": "changed", "other": "y"}
    ovs.del_port(veth)
    ovs.del_port(veth)  # absent is fine
    assert ovs.interfaces(bridge) == [] and ovs.find_interface(veth) is None


def test_absent_things_are_answers_not_errors(ovs: Ovs) -> None:
    missing = "dctno" + secrets.token_hex(4)
    assert ovs.find_interface(missing) is None
    assert ovs.port_bridge(missing) is None
    assert ovs.interfaces(missing) == []
    assert not ovs.bridge_exists(missing)
    ovs.del_bridge(missing)
    ovs.del_port(missing)
    ovs.set_interface_ids(missing, {"k": "v"})  # removed meanwhile: nothing to record
    assert ovs.find_interface(missing) is None


def test_every_ovsdb_failure_is_a_backend_error(ovs: Ovs, bridge: str) -> None:
    """Each of these raised ovsdbapp's own exceptions, which Docker saw as "internal error"."""
    missing = "dctno" + secrets.token_hex(4)
    failures = {
        "reading the controllers of": lambda: ovs.tune_controllers(missing),
        "reading the error of": lambda: ovs.interface_error(missing),
        f"creating bridge {bridge}": lambda: ovs.add_bridge(bridge, {}, "netdev", "00000000000000ff", ()),
        f"adding port {missing}": lambda: ovs.add_port(missing, missing, {}, None),
    }
    for what, call in failures.items():
        with pytest.raises(BackendError, match=f"^ovsdb: {what}"):
            call()


def test_a_port_ovs_cannot_open_is_refused_and_removed(ovs: Ovs, bridge: str) -> None:
    missing = "dctno" + secrets.token_hex(4)  # no such network device
    with pytest.raises(BackendError, match=f"port {missing} got no ofport \\(error: .+\\)"):
        ovs.add_port(bridge, missing, {}, None)
    assert ovs.find_interface(missing) is None


def test_an_unreachable_ovsdb_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="^ovsdb: connecting to unix:/nonexistent/db.sock failed"):
        Ovs("unix:/nonexistent/db.sock", timeout=2)
