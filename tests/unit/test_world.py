"""Reading the World: sources joined once, decoded through the contract, FAUCET asked only when needed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dovecote import contract
from dovecote.reconciler.errors import SourceUnavailable
from dovecote.reconciler.ovsdb_source import build_snapshot
from dovecote.reconciler.world import Controller, FaucetState, OperatorConfig, Sources, read_all, sha256_text
from tests.unit.fixtures import NET_ID, bridge, container_port, docker


def _sources(on_disk: str | None, asked: list[int], **overrides: object) -> Sources:
    def faucet() -> FaucetState:
        asked.append(1)
        return FaucetState(1, 0, (), "")

    values: dict[str, object] = dict(
        bridges=lambda: (bridge(), bridge("b" * 64, dpid=2)),
        docker=lambda: docker(),
        operator=lambda: ("dps: {}\n", OperatorConfig()),
        generated=lambda: on_disk,
        faucet=faucet,
    )
    values.update(overrides)
    return Sources(**values)  # type: ignore[arg-type]


def test_only_networks_docker_lists_for_this_driver_are_in_the_world() -> None:
    world = read_all(_sources(None, []))
    assert [(n.network_id, n.name) for n in world.networks] == [(NET_ID, "mynet")]
    assert world.operator_text == "dps: {}\n" and world.generated_text is None


def test_faucet_is_asked_only_when_it_is_not_known_to_run_the_file_on_disk() -> None:
    asked: list[int] = []
    assert read_all(_sources(None, asked)).faucet is None  # no file: nothing to confirm yet
    assert read_all(_sources("x", asked), faucet_runs=sha256_text("x")).faucet is None
    assert asked == []
    assert read_all(_sources("x", asked), faucet_runs=sha256_text("old")).faucet == FaucetState(1, 0, (), "")
    assert asked == [1]


def test_a_source_that_fails_is_unavailable() -> None:
    def broken() -> str:
        raise PermissionError("faucet.yaml: permission denied")

    with pytest.raises(SourceUnavailable, match="permission denied"):
        read_all(_sources(None, [], generated=broken))


def test_ovsdb_rows_are_decoded_through_the_contract() -> None:
    ours = container_port("e1" * 32, 3)
    assert ours.record is not None
    name = contract.bridge_name(NET_ID)

    def iface(name: str, ofport: object, ids: dict[str, str], kind: str = "", link: object = "up") -> SimpleNamespace:
        return SimpleNamespace(name=name, ofport=ofport, external_ids=ids, type=kind, link_state=link)

    record = bridge().record
    rows = [
        iface(ours.name, [3], contract.encode_port(ours.record)),
        iface("tap7", 7, {}, link=["down"]),
        iface("vif9", 9, {contract.IFACE_ID: "someone-elses"}),
        iface(name, [], {}, "internal"),
    ]
    tables = {
        "Bridge": SimpleNamespace(
            rows={
                1: SimpleNamespace(
                    name=name,
                    external_ids=contract.encode_network(record),
                    ports=[SimpleNamespace(interfaces=[r]) for r in rows],
                    controller=[
                        SimpleNamespace(target="tcp:127.0.0.1:6654", is_connected=False),
                        SimpleNamespace(target="tcp:127.0.0.1:6653", is_connected=True),
                    ],
                ),
                2: SimpleNamespace(name="br-theirs", external_ids={}, ports=[], controller=[]),
            }
        )
    }
    (decoded,) = build_snapshot(tables)
    assert decoded.record == record
    by_name = {i.name: i for i in decoded.interfaces}
    assert by_name[ours.name].record == ours.record and by_name[ours.name].ofport == 3 and by_name[ours.name].link_up
    assert by_name["tap7"].record is None and not by_name["tap7"].link_up and by_name["tap7"].foreign_id == ""
    assert by_name["vif9"].foreign_id == "someone-elses"
    assert (by_name[name].ofport, by_name[name].type) == (-1, "internal")
    assert decoded.controllers == (Controller("tcp:127.0.0.1:6653", True), Controller("tcp:127.0.0.1:6654", False))
