"""The label grammar (docs/labels.md): well-formed labels work, everything else fails closed.

Tested through the planner, as the reconciler reads labels, so that these tests say what a
container's port gets, whatever the parser's internals.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dovecote.contract import PortKind
from dovecote.reconciler.desired import DesiredDp, Plan
from dovecote.reconciler.plan import plan
from dovecote.reconciler.world import OperatorConfig
from tests.unit.fixtures import bridge, container, container_port, docker, world

ACLS = frozenset({"allow-all", "deny-all", "web", "a.b_c-1"})
OPERATOR = OperatorConfig(acl_names=ACLS)
EP = "e1" * 32


def _plan(labels: dict[str, str], default_acl: str = "", network: str = "mynet") -> Plan:
    return plan(
        world(
            (bridge(default_acl=default_acl, ports=(container_port(EP, 1),)),),
            docker(container("web1", EP, **labels), networks=(("a" * 64, network),)),
            OPERATOR,
        )
    )


def _port(result: Plan):  # noqa: ANN202 - DesiredPort or None
    (dp,) = result.dps
    return {p.ofport: p for p in dp.ports}.get(1)


MALFORMED = [
    "mynet:web:extra",  # a second ':'
    "mynet:",  # an empty value
    ":web",  # an empty network
    "web//deny-all",  # an empty item
    "web/",  # an empty item at the end
    "/web",
    "web,",  # an empty ACL name
    ",web",
    "web,,deny-all",
    "bad$net:allow-all",  # not a network name
    "mynet:allow-all/bad net:deny-all",
    "other:bad!acl",  # an ACL that is not a name, even for another network
    "web\x00",  # control characters
    "web\n",
    "we\tb",
    "web\u200b",  # a format character
    "a" * 1025,  # oversized
    "web;deny-all",
    "x]}, 2: {native_vlan: 5}, y: [z",
]


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_portacl_fails_closed(value: str) -> None:
    """Before: several of these (e.g. ``bad$net:allow-all``) read as an entry for another network,
    and the port got its VLAN with no ACL at all."""
    result = _plan({"dovesnap.faucet.portacl": value})
    assert _port(result) is None
    (problem,) = result.problems
    assert problem.subject == "container web1" and problem.cause == "label" and "malformed" in problem.reason


@pytest.mark.parametrize(
    ("value", "acls"),
    [
        ("web", ("web",)),
        ("web,deny-all", ("web", "deny-all")),
        (" web , deny-all ", ("web", "deny-all")),
        ("mynet:web", ("web",)),
        ("mynet:web/other:deny-all", ("web",)),
        ("allow-all/mynet:web", ("web",)),
        ("mynet:web/allow-all", ("allow-all",)),  # later items win
        ("mynet : web , a.b_c-1", ("web", "a.b_c-1")),
    ],
)
def test_well_formed_portacl(value: str, acls: tuple[str, ...]) -> None:
    port = _port(_plan({"dovecote.faucet.portacl": value}, default_acl="deny-all"))
    assert port is not None and port.vlan == 100 and port.acls_in == acls


@pytest.mark.parametrize("value", ["other:web", "other:web/third:deny-all", "", "  "])
def test_a_label_naming_only_other_networks_gives_the_default(value: str) -> None:
    port = _port(_plan({"dovecote.faucet.portacl": value}, default_acl="deny-all"))
    assert port is not None and port.acls_in == ("deny-all",)


def test_mac_prefix_with_colons_is_a_prefix_not_a_network() -> None:
    """Before: ``0e:99`` was read as network ``0e`` with value ``99``, so no MAC was set."""
    (change,) = _plan({"dovesnap.faucet.mac_prefix": "0e:99"}).macs
    assert change.wanted == "0e:99:00:00:00:01"
    for spelling in ("0e99", "0e-99", "mynet:0e99", "mynet:0e:99", "other:02/mynet:0e-99"):
        (change,) = _plan({"dovesnap.faucet.mac_prefix": spelling}).macs
        assert change.wanted == "0e:99:00:00:00:01", spelling
    assert _plan({"dovesnap.faucet.mac_prefix": "other:0e99"}).macs == ()


@pytest.mark.parametrize("value", ["0e:9", "0f:99", "0e:99:aa:bb:cc:dd", "mynet:", "0e:99/", "zz", "0e99:mynet"])
def test_a_malformed_mac_prefix_fails_closed(value: str) -> None:
    result = _plan({"dovesnap.faucet.mac_prefix": value})
    assert _port(result) is None and result.macs == () and result.problems[0].cause == "label"


@pytest.mark.parametrize(("value", "mirrored"), [("true", True), ("mynet:true", True), ("other:true", False)])
def test_mirror_label(value: str, mirrored: bool) -> None:
    port = _port(_plan({"dovesnap.faucet.mirror": value}))
    assert port is not None and port.mirrored is mirrored


@pytest.mark.parametrize("value", ["maybe", "mynet:maybe", "mynet:true:x", "true/"])
def test_a_malformed_mirror_label_fails_closed(value: str) -> None:
    assert _port(_plan({"dovesnap.faucet.mirror": value})) is None


# --- properties ---------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ACL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _oracle(value: str, network: str) -> tuple[str, ...] | None | str:
    """An independent reading of docs/labels.md: the ACLs for ``network``, None (default), or 'bad'."""
    if not value.strip(" "):
        return None
    if len(value) > 1024 or any(not c.isprintable() or c in "\t\n\r\x0b\x0c" for c in value):
        return "bad"
    result: tuple[str, ...] | None = None
    for raw in value.split("/"):
        item = raw.strip(" ")
        net = None
        if ":" in item:
            net, _, item = (x.strip(" ") for x in item.partition(":"))
            if not _NAME.fullmatch(net):
                return "bad"
        names = tuple(n.strip(" ") for n in item.split(","))
        if not all(_ACL.fullmatch(n) for n in names):
            return "bad"
        if net is None or net == network:
            result = names
    return result


label_text = st.one_of(
    st.text(alphabet=string.printable + "\x00\u200b", max_size=40),
    st.lists(
        st.sampled_from(["mynet", "other", "web", "deny-all", ":", "/", ",", " ", "bad$", "", "allow-all", "."]),
        max_size=10,
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(value=label_text)
def test_no_label_ever_gives_a_port_a_vlan_without_an_acl(value: str) -> None:
    """With a default ACL, every port that forwards has an ACL: malformed labels close the port."""
    result = _plan({"dovesnap.faucet.portacl": value}, default_acl="deny-all")
    port = _port(result)
    assert port is None or (port.vlan is not None and port.acls_in)
    expected = _oracle(value, "mynet")
    if expected == "bad":
        assert port is None and result.problems and result.problems[0].cause == "label"
    elif port is not None:
        assert port.acls_in == (expected or ("deny-all",))
    else:  # well formed, but names an ACL that is not defined
        assert result.problems[0].cause == "unknown-acl"


def _dp(result: Plan) -> DesiredDp:
    (dp,) = result.dps
    return dp


@settings(max_examples=100, deadline=None)
@given(value=label_text, other=label_text)
def test_malformed_labels_of_any_kind_never_open_a_port(value: str, other: str) -> None:
    result = _plan({"dovesnap.faucet.mirror": value, "dovesnap.faucet.mac_prefix": other}, default_acl="deny-all")
    for port in _dp(result).ports:
        if port.kind is PortKind.CONTAINER:
            assert port.vlan is not None and port.acls_in == ("deny-all",)
