#!/usr/bin/env bash
# Regenerate README.md's outputs (the blocks between `<!-- sample: NAME -->` and `<!-- /sample -->`)
# and docs/operator-graph.png from a real run with the default names and ports: scripts/run.sh, then
# the walkthrough exactly as the README types it, then the two networks of "Operator tools". So the
# samples stay what a newcomer sees.
#
#   scripts/readme-samples.sh
#
# Run it as root on a throwaway Debian 12 machine: it takes the names the README uses (driver `ovs`,
# FAUCET on 6653, /etc/dovecote, the networks mynet, webnet and labnet, the containers c1, c2, web1,
# web2, lab1 and lab2, the host interface mirror0) and leaves dovecote running. It refuses to start
# when one of those networks or containers exists. The new README and graph are written in place;
# `git diff` shows what changed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
say() { printf 'readme-samples: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "readme-samples: run as root" >&2; exit 1; }
for name in mynet webnet labnet c1 c2 web1 web2 lab1 lab2; do
  if docker inspect "$name" >/dev/null 2>&1; then
    say "$name exists: run this on a throwaway machine (or remove it first)"
    exit 2
  fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CONTROLLER=tcp:127.0.0.1:6653

# Until every listed container's port on NETWORK has the FAUCET state wanted (configured unless named).
settle() {
  local network=$1; shift
  dovecote status --json 2>/dev/null | python3 -c '
import json, sys
network, wanted = sys.argv[1], dict(a.split("=") for a in sys.argv[2:])
view = json.load(sys.stdin)
net = next((n for n in view["networks"] if n["name"] == network), None)
ok = net is not None and net["ports"] and all(c["connected"] for c in net["controllers"]) and all(
    p["faucet"] == wanted.get(p["container"], "configured") for p in net["ports"])
sys.exit(0 if ok else 1)' "$network" "$@"
}
wait_for() {
  for _ in $(seq 1 120); do "$@" && return 0; sleep 0.5; done
  say "timed out waiting for: $*"; dovecote status >&2; exit 1
}

say "scripts/run.sh"
scripts/run.sh >"$out/run"
dovecote doctor >"$out/doctor-first" || { cat "$out/doctor-first" >&2; say "doctor failed on a fresh stack"; exit 1; }

say "the walkthrough"
docker network create mynet -d ovs -o ovs.bridge.mode=nat -o ovs.bridge.dpid=0x1 \
    -o ovs.bridge.controller=$CONTROLLER \
    --subnet 192.168.10.0/24 --ip-range 192.168.10.128/25 --gateway 192.168.10.1 >/dev/null
docker run -td --name c1 --net=mynet busybox >/dev/null
docker run -td --name c2 --net=mynet busybox >/dev/null
wait_for settle mynet
docker exec c1 ping -c 2 192.168.10.129 >"$out/ping"
cat /etc/dovecote/faucet/dovecote-generated.yaml >"$out/generated"
dovecote status >"$out/walkthrough-status"
docker rm -f c1 c2 >/dev/null
docker network rm mynet >/dev/null

say "the operator tools' networks"
ip link show mirror0 >/dev/null 2>&1 || ip link add mirror0 type veth peer name mirror0p
ip link set mirror0 up
docker network create webnet -d ovs -o ovs.bridge.mode=nat -o ovs.bridge.dpid=0x1 \
    -o ovs.bridge.controller=$CONTROLLER -o ovs.bridge.add_ports=mirror0/99 \
    --subnet 192.168.10.0/24 --ip-range 192.168.10.128/25 --gateway 192.168.10.1 >/dev/null
docker network create labnet -d ovs -o ovs.bridge.mode=flat -o ovs.bridge.dpid=0x2 \
    -o ovs.bridge.controller=$CONTROLLER --subnet 192.168.20.0/24 --gateway 192.168.20.1 >/dev/null
docker run -td --name web1 --net=webnet --label dovecote.faucet.portacl=no-ssh \
    --label dovecote.faucet.mirror=true busybox >/dev/null
docker run -td --name web2 --net=webnet busybox >/dev/null
docker run -td --name lab1 --net=labnet busybox >/dev/null
docker run -td --name lab2 --net=labnet --label dovecote.faucet.portacl=typo-acl busybox >/dev/null
wait_for settle webnet
wait_for settle labnet lab2=rejected
dovecote status >"$out/status"
dovecote graph -o "$out/graph" >/dev/null
cp "$out/graph.png" docs/operator-graph.png
dovecote doctor >"$out/doctor" && { say "doctor passed with a rejected port"; exit 1; }
docker rm -f web1 web2 lab1 lab2 >/dev/null
docker network rm webnet labnet >/dev/null
ip link del mirror0

say "writing README.md"
python3 - "$out" README.md <<'PY'
import pathlib, re, sys
out, readme = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
fences = {"generated": "```yaml"}
def block(match: re.Match) -> str:
    name = match.group(1)
    text = (out / name).read_text().rstrip("\n")
    return f"<!-- sample: {name} -->\n{fences.get(name, '```')}\n{text}\n```\n<!-- /sample -->"
text, count = re.subn(r"<!-- sample: ([\w-]+) -->.*?<!-- /sample -->", block, readme.read_text(), flags=re.S)
readme.write_text(text)
print(f"readme-samples: {count} samples written", file=sys.stderr)
PY
