"""What the driver learns of Docker's networks (off the request path), and how it judges bridges
Docker forgot: pure, with listings and times passed in."""

from __future__ import annotations

from typing import Any

from dovecote import contract
from dovecote.driver import known

WEB, DB, GONE = "7" * 64, "d" * 64, "0" * 64
LISTING = [
    {"Id": WEB, "Name": "web", "Driver": "ovs", "Options": {"ovs.bridge.dpid": "0x1"}},
    {"Id": DB, "Name": "db", "Driver": "bridge", "Options": {}},
    {"Id": "b" * 64, "Name": "bridge", "Driver": "bridge", "Options": {"com.docker.network.bridge.name": "docker0"}},
    {"Id": "c" * 64, "Name": "custom", "Driver": "bridge", "Options": {"com.docker.network.bridge.name": "lan br"}},
    {"Id": "short", "Name": "junk"},
    "junk",
]


def test_a_listing_gives_names_and_docker_bridges() -> None:
    listing = known.parse_networks(LISTING, asked_at=5.0)
    assert listing.names == {WEB: "web", DB: "db", "b" * 64: "bridge", "c" * 64: "custom"}
    assert listing.bridges == {"br-" + DB[:12], "docker0"}  # a name that is no interface name is dropped
    assert known.parse_networks({"message": "page not found"}, 1.0).names == {}


def test_docker_bridges_include_default_names_before_any_listing() -> None:
    kernel = ["docker0", "br-0123456789ab", "br0", "virbr0", "br-uplink"]
    assert known.docker_bridges(None, kernel) == {"docker0", "br-0123456789ab"}
    listing = known.parse_networks(LISTING, 1.0)
    assert known.docker_bridges(listing, []) == {"docker0", "br-" + DB[:12]}


def test_networks_are_described_by_name_when_known() -> None:
    listing = known.parse_networks(LISTING, 1.0)
    assert known.describe(WEB, listing) == f"web ({WEB[:12]})"
    assert known.describe(GONE, listing) == GONE[:12]
    assert known.describe(WEB, None) == WEB[:12]
    holder = known.KnownNetworks()
    assert holder.describe(WEB) == WEB[:12]
    holder.update(listing)
    assert holder.describe(WEB) == f"web ({WEB[:12]})"


def record(network_id: str, complete: bool = True) -> contract.NetworkRecord:
    return contract.NetworkRecord(
        network_id, contract.bridge_name(network_id), contract.NetworkSettings(dpid=1), complete=complete
    )


def test_a_bridge_is_forgotten_after_two_listings_a_grace_period_apart() -> None:
    live, lost = record(WEB), record(GONE)
    first = known.judge_forgotten([live, lost], known.parse_networks(LISTING, 100.0), {}, grace=60)
    assert first.orphans == [] and first.missing_since == {lost.bridge: 100.0}
    early = known.judge_forgotten([live, lost], known.parse_networks(LISTING, 159.0), first.missing_since, 60)
    assert early.orphans == [] and early.missing_since == {lost.bridge: 100.0}
    late = known.judge_forgotten([live, lost], known.parse_networks(LISTING, 160.0), first.missing_since, 60)
    assert late.orphans == [lost] and late.missing_since == {}


def test_a_network_listed_again_starts_its_clock_over() -> None:
    """A network created just after a listing was asked for is missing from it, and in the next one."""
    fresh = record(GONE)
    seen: list[dict[str, Any]] = [*LISTING, {"Id": GONE, "Name": "fresh", "Driver": "ovs"}]
    missing = known.judge_forgotten([fresh], known.parse_networks(LISTING, 100.0), {}, 60).missing_since
    present = known.judge_forgotten([fresh], known.parse_networks(seen, 105.0), missing, 60)
    assert present.missing_since == {} and present.orphans == []
    again = known.judge_forgotten([fresh], known.parse_networks(LISTING, 170.0), present.missing_since, 60)
    assert again.orphans == [] and again.missing_since == {fresh.bridge: 170.0}


def test_an_empty_answer_judges_nothing() -> None:
    assert known.judge_forgotten([record(WEB)], known.DockerNetworks(asked_at=1000.0), {"x": 0.0}, 60).orphans == []


class FakeDocker:
    def __init__(self) -> None:
        self.answers: list[Any] = []

    def __call__(self) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_watcher_keeps_the_last_good_listing() -> None:
    docker, holder = FakeDocker(), known.KnownNetworks()
    watcher = known.Watcher(docker, holder)
    docker.answers = [OSError("connection refused"), LISTING, TimeoutError("timed out")]
    assert not watcher.poll_once() and holder.latest() is None
    assert watcher.poll_once()
    listing = holder.latest()
    assert listing is not None and listing.names[WEB] == "web"
    assert not watcher.poll_once() and holder.latest() is listing  # Docker starting: keep what we knew
