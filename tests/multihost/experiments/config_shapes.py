"""Which multi-host FAUCET config shapes FAUCET 1.10.12's own parser accepts (issue 18, phase 1).

Each case is a set of files (a top ``faucet.yaml`` that includes one file per host, as a remote
FAUCET would hold them) run through ``faucet.config_parser.dp_parser``, exactly what FAUCET does
on a reload. Prints one line per case: ``ok`` or FAUCET's error text.

    python -m tests.multihost.experiments.config_shapes

No daemons, no root: only FAUCET's parser from the venv this runs in.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from ruamel.yaml import YAML

HW = "Open vSwitch"


def host_file(
    host: str,
    stack_dpid: int,
    networks: dict[str, int],
    peers: dict[str, int] | None = None,
    priority: int | None = None,
    vlan_defs: dict | None = None,
) -> dict:
    """One host's file in the chosen design (A): a stack dp ``stack@HOST`` with one tunnel port per
    peer (port 100 + peer index), and per network a dp ``NET@HOST`` patched to it (stack link
    between network dp port 1 and stack dp port 10 + network index). Port 2 is a container."""
    stack_name = f"stack@{host}"
    stack_ifaces: dict = {}
    dps: dict = {}
    for index, (net, dpid) in enumerate(sorted(networks.items())):
        net_dp = f"{net}@{host}"
        stack_ifaces[10 + index] = {"description": f"patch to {net_dp}", "stack": {"dp": net_dp, "port": 1}}
        dps[net_dp] = {
            "dp_id": dpid,
            "hardware": HW,
            "interfaces": {
                1: {"description": f"patch to {stack_name}", "stack": {"dp": stack_name, "port": 10 + index}},
                2: {"description": "container", "native_vlan": net},
            },
        }
    for peer, port in sorted((peers or {}).items()):
        stack_ifaces[port] = {
            "description": f"vxlan to {peer}",
            "stack": {"dp": f"stack@{peer}", "port": port_for(host)},
        }
    stack_dp: dict = {"dp_id": stack_dpid, "hardware": HW, "interfaces": stack_ifaces}
    if priority is not None:
        stack_dp["stack"] = {"priority": priority}
    dps[stack_name] = stack_dp
    doc: dict = {"dps": dps}
    if vlan_defs:
        doc["vlans"] = vlan_defs
    return doc


def port_for(host: str) -> int:
    """The tunnel port number that points at ``host``: fixed per host, the same on every peer."""
    return {"hosta": 101, "hostb": 102, "hostc": 103}[host]


def check(files: dict[str, dict | str]) -> str:
    """Write the files into a scratch dir and parse ``faucet.yaml`` the way FAUCET does."""
    from faucet.conf import InvalidConfigError
    from faucet.config_parser import dp_parser

    yaml = YAML(typ="safe", pure=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in files.items():
            with open(Path(tmp) / name, "w", encoding="utf-8") as handle:
                if isinstance(doc, str):
                    handle.write(doc)
                else:
                    yaml.dump(doc, handle)
        try:
            _, _, dps, _ = dp_parser(str(Path(tmp) / "faucet.yaml"), "shapes")
        except InvalidConfigError as err:
            return f"rejected: {err}"
        names = sorted(dp.name for dp in dps)
        roots = {dp.stack.root_name for dp in dps if dp.stack and dp.stack.root_name}
        return f"ok: dps {names}; stack root {sorted(roots)}"


def top(vlans: dict | None = None, includes: list[str] | None = None, optional: bool = True) -> dict:
    doc: dict = {"vlans": vlans if vlans is not None else {"net1": {"vid": 100}}}
    key = "include-optional" if optional else "include"
    doc[key] = includes if includes is not None else ["dovecote_hosta.yaml", "dovecote_hostb.yaml"]
    return doc


CASES: dict[str, dict[str, dict | str]] = {
    # the design that works: each host's file whole, both ends of the tunnel link present
    "A: two hosts, stack dp per host, tunnel link both ways": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1),
        "dovecote_hostb.yaml": host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101}),
    },
    "A: three hosts, full mesh of tunnels": {
        "faucet.yaml": top(includes=["dovecote_hosta.yaml", "dovecote_hostb.yaml", "dovecote_hostc.yaml"]),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102, "hostc": 103}, priority=1),
        "dovecote_hostb.yaml": host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101, "hostc": 103}, priority=2),
        "dovecote_hostc.yaml": host_file("hostc", 0xC0, {"net1": 0xC1}, {"hosta": 101, "hostb": 102}),
    },
    "A: host b not written yet (optional include missing), a has no tunnel port": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {}, priority=1),
    },
    "A: host a links to b before b exists": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1),
    },
    "A: host a links to b, b written without the reverse port": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1),
        "dovecote_hostb.yaml": host_file("hostb", 0xB0, {"net1": 0xB1}, {}),
    },
    "A: no stack priority anywhere": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}),
        "dovecote_hostb.yaml": host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101}),
    },
    "A: b's stack dp reuses a's dp_id": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1),
        "dovecote_hostb.yaml": host_file("hostb", 0xA0, {"net1": 0xB1}, {"hosta": 101}),
    },
    "A: b's network dp reuses a's network dp_id": {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1),
        "dovecote_hostb.yaml": host_file("hostb", 0xB0, {"net1": 0xA1}, {"hosta": 101}),
    },
    # VLAN of a multi-host network: where may it be defined?
    "VLAN defined identically in both host files (not in faucet.yaml)": {
        "faucet.yaml": top(vlans={}),
        "dovecote_hosta.yaml": host_file(
            "hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1, vlan_defs={"net1": {"vid": 100}}
        ),
        "dovecote_hostb.yaml": host_file(
            "hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101}, vlan_defs={"net1": {"vid": 100}}
        ),
    },
    "VLAN defined differently in the two host files (last include wins)": {
        "faucet.yaml": top(vlans={}),
        "dovecote_hosta.yaml": host_file(
            "hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1, vlan_defs={"net1": {"vid": 100}}
        ),
        "dovecote_hostb.yaml": host_file(
            "hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101}, vlan_defs={"net1": {"vid": 200}}
        ),
    },
}


def _rename_vlan(doc: dict, old: str, new: str) -> dict:
    for dp in doc["dps"].values():
        for iface in dp["interfaces"].values():
            if iface.get("native_vlan") == old:
                iface["native_vlan"] = new
    return doc


def _fill_late_cases() -> None:
    """Cases built from others (kept out of the literal above for readability)."""
    a = _rename_vlan(host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1), "net1", "net1@hosta")
    b = _rename_vlan(host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101}), "net1", "net1@hostb")
    CASES["host-qualified VLAN names sharing one vid (net1@hosta, net1@hostb: vid 100)"] = {
        "faucet.yaml": top(vlans={"net1@hosta": {"vid": 100}, "net1@hostb": {"vid": 100}}),
        "dovecote_hosta.yaml": a,
        "dovecote_hostb.yaml": b,
    }

    # design (B): stack ports on each network bridge, one tunnel per network per peer
    def net_dp(host: str, net: str, dpid: int, peer: str, port: int, priority: int | None = None) -> dict:
        dp: dict = {
            "dp_id": dpid,
            "hardware": HW,
            "interfaces": {
                2: {"native_vlan": net},
                port: {"stack": {"dp": f"{net}@{peer}", "port": port}},
            },
        }
        if priority:
            dp["stack"] = {"priority": priority}
        return dp

    CASES["B: stack ports on each network bridge, one network"] = {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": {"dps": {"net1@hosta": net_dp("hosta", "net1", 0xA1, "hostb", 100, 1)}},
        "dovecote_hostb.yaml": {"dps": {"net1@hostb": net_dp("hostb", "net1", 0xB1, "hosta", 100)}},
    }
    CASES["B: two networks, two disjoint stacks (one root each)"] = {
        "faucet.yaml": top(vlans={"net1": {"vid": 100}, "net2": {"vid": 200}}),
        "dovecote_hosta.yaml": {
            "dps": {
                "net1@hosta": net_dp("hosta", "net1", 0xA1, "hostb", 100, 1),
                "net2@hosta": net_dp("hosta", "net2", 0xA2, "hostb", 100, 2),
            }
        },
        "dovecote_hostb.yaml": {
            "dps": {
                "net1@hostb": net_dp("hostb", "net1", 0xB1, "hosta", 100),
                "net2@hostb": net_dp("hostb", "net2", 0xB2, "hosta", 100),
            }
        },
    }
    # names: which separators FAUCET takes in a dp name
    for sep in ("@", ".", "/", ":", " "):
        a = host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1)
        b = host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101})
        text_a = YAML_DUMP(a).replace("@", sep)
        text_b = YAML_DUMP(b).replace("@", sep)
        CASES[f"dp names with separator {sep!r} (net1{sep}hosta)"] = {
            "faucet.yaml": top(),
            "dovecote_hosta.yaml": text_a,
            "dovecote_hostb.yaml": text_b,
        }

    # tunnel ports named after the peer, each end referring to the other by *name*: a host need
    # not know the port number OVS gave its peer's end
    def named(host: str, peer: str, dpid: int, priority: int | None = None) -> dict:
        dp: dict = {
            "dp_id": dpid,
            "hardware": HW,
            "interfaces": {
                f"vx-{peer}": {
                    "number": 7 if host == "hosta" else 9,
                    "stack": {"dp": f"stack@{peer}", "port": f"vx-{host}"},
                },
                2: {"native_vlan": "net1"},
            },
        }
        if priority:
            dp["stack"] = {"priority": priority}
        return dp

    CASES["tunnel ports referenced by name (vx-hostb on a, vx-hosta on b)"] = {
        "faucet.yaml": top(),
        "dovecote_hosta.yaml": {"dps": {"stack@hosta": named("hosta", "hostb", 0xA0, 1)}},
        "dovecote_hostb.yaml": {"dps": {"stack@hostb": named("hostb", "hosta", 0xB0)}},
    }
    # FAUCET's router on a stacked multi-host VLAN: one gateway address for the whole segment
    vip = {"net1": {"vid": 100, "faucet_vips": ["10.60.0.1/24"], "faucet_mac": "0e:00:00:00:60:01"}}
    a = host_file("hosta", 0xA0, {"net1": 0xA1}, {"hostb": 102}, priority=1)
    b = host_file("hostb", 0xB0, {"net1": 0xB1}, {"hosta": 101})
    CASES["faucet_vips on the shared VLAN (stacked)"] = {
        "faucet.yaml": top(vlans=vip),
        "dovecote_hosta.yaml": a,
        "dovecote_hostb.yaml": b,
    }


def YAML_DUMP(doc: dict) -> str:  # noqa: N802 - used like a constant helper
    import io

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def main() -> int:
    logging.disable(logging.CRITICAL)
    _fill_late_cases()
    width = max(len(name) for name in CASES)
    for name, files in CASES.items():
        print(f"{name:<{width}}  {check(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
