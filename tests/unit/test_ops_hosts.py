"""Every host of a multi-host setup in ``dovecote status`` and ``graph`` (pure: files and metrics in)."""

from __future__ import annotations

from dovecote import contract
from dovecote.ops.dot import to_dot
from dovecote.ops.hosts import overview
from dovecote.ops.model import HostView
from dovecote.ops.table import render_status


def _files() -> dict:
    share = contract.NetworkShare("web", "hosta", 100, ("10.60.0.0/24",), ("10.60.0.64/27",))
    return {
        "faucet.yaml": {"include-optional": ["dovecote_hosta.yaml", "dovecote_hostb.yaml"]},
        "dovecote_hosta.yaml": {
            "dps": {
                "web@hosta": {
                    "dp_id": 0xA1,
                    "description": contract.describe_share("dovecote network web on hosta", share),
                    "interfaces": {
                        1: {"native_vlan": 100},
                        2: {"native_vlan": 100},
                        65279: {"stack": {"dp": "stack@hosta", "port": 3}},
                    },
                },
                "stack@hosta": {
                    "dp_id": 0xA0,
                    "interfaces": {
                        3: {"stack": {"dp": "web@hosta", "port": 65279}},
                        1: {"name": "link-hostb", "stack": {"dp": "stack@hostb", "port": "link-hosta"}},
                        2: {"name": "link-hostc", "stack": {"dp": "stack@hostc", "port": "link-hosta"}},
                    },
                },
            }
        },
        "dovecote_hostb.yaml": {
            "dps": {
                "stack@hostb": {
                    "dp_id": 0xB0,
                    "interfaces": {5: {"name": "link-hosta", "stack": {"dp": "stack@hosta", "port": "link-hostb"}}},
                }
            }
        },
    }


def test_hosts_and_their_links_with_the_worse_ends_state() -> None:
    states = {("stack@hosta", "link-hostb"): 3.0, ("stack@hostb", "link-hosta"): 4.0, ("stack@hosta", "3"): 3.0}
    hosts, links = overview(_files(), states)
    assert [(h.host, h.stack_dp, h.stack_dp_id) for h in hosts] == [
        ("hosta", "stack@hosta", 0xA0),
        ("hostb", "stack@hostb", 0xB0),
    ]
    (web,) = hosts[0].networks
    assert (web.name, web.dp, web.containers, web.joined, web.ip_ranges) == (
        "web",
        "web@hosta",
        2,
        True,
        ["10.60.0.64/27"],
    )
    by_ends = {(k.dp, str(k.port), k.peer_dp, str(k.peer_port)): k.state for k in links}
    assert by_ends[("stack@hosta", "link-hostb", "stack@hostb", "link-hosta")] == "gone"
    assert by_ends[("stack@hosta", "link-hostc", "stack@hostc", "link-hosta")] == "one-sided"
    assert by_ends[("stack@hosta", "3", "web@hosta", "65279")] == "up"


def test_status_and_graph_show_every_host() -> None:
    view = HostView()
    view.hosts, view.stack_links = overview(
        _files(), {("stack@hosta", "link-hostb"): 3.0, ("stack@hostb", "link-hosta"): 3.0}
    )
    view.hosts_source = "FAUCET's tree"
    view.this_host = "hosta"
    view.handshake = [contract.LinkStatus("hostb", contract.LinkState.LINKED, "", 1)]
    text = render_status(view)
    assert "web@hosta" in text and "stack@hostb (0xb0)" in text
    assert "stack@hosta:link-hostb  stack@hostb:link-hosta  up" in text
    assert "hostb  linked" in text
    dot = to_dot(view)
    assert "host hostb (dovecote_hostb.yaml)" in dot and '(up)"' in dot
