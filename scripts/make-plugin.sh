#!/usr/bin/env bash
# Build dovecote's driver as a Docker *managed* plugin, locally, with no registry: the rootfs of the
# dovecote image (docker/Dockerfile, target `dovecote`) plus docker/plugin/config.json, through
# `docker plugin create`, then `docker plugin enable`. dockerd starts enabled managed plugins itself,
# before it restores containers at boot, so containers on dovecote networks come back after a reboot.
#
#   scripts/make-plugin.sh [NAME [ALIAS]]     (defaults: NAME dovecote, ALIAS ovs)
#
# NAME is a plugin reference: `dovecote` is stored as `dovecote:latest`, and Docker 20.10 accepts a
# managed network plugin only by that full name: `docker network create -d dovecote:latest` works,
# `-d dovecote` fails with "could not resolve driver dovecote in registry" (libnetwork registers the
# driver under NAME:TAG, while the lookup normalises the short name to the same plugin first, so the
# legacy fallback never runs). So that `-d ovs` keeps working for dovesnap users, ALIAS is a legacy
# plugin spec, /etc/docker/plugins/ALIAS.spec, naming the managed plugin's socket: Docker finds no
# managed plugin called ALIAS:latest and falls back to the spec. /etc survives reboots, and the
# socket's path holds the plugin id, which survives them too. ALIAS must differ from NAME (or the
# managed lookup wins and fails as above); an empty ALIAS makes none. Networks made with `-d ovs`
# show DRIVER ovs in `docker network ls`; those made with `-d dovecote:latest` show dovecote:latest.
# Settings (environment):
#   DOVECOTE_PLUGIN_IMAGE  image whose rootfs becomes the plugin (localhost/dovecote/dovecote:latest);
#                          built from docker/Dockerfile when missing, or always with DOVECOTE_PLUGIN_BUILD=1
#   DOVECOTE_BASE          base image for that build (debian:bookworm-slim; scripts/make-base-image.sh
#                          makes dovecote-base:bookworm on a machine without a registry)
#   DOVECOTE_OVS_RUN       the host's Open vSwitch run directory, mounted at /var/run/openvswitch (/run/openvswitch)
#   DOVECOTE_LOG_LEVEL     the driver's log level (info)
# A plugin of the same name is replaced: disabled, removed and created again. Its networks stay
# (Docker keeps them by driver name) and work with the new plugin once it is enabled.
# The driver's log is dockerd's log (lines tagged with the plugin id).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:-dovecote}
ALIAS=${2-ovs}
IMAGE=${DOVECOTE_PLUGIN_IMAGE:-localhost/dovecote/dovecote:latest}
BASE=${DOVECOTE_BASE:-debian:bookworm-slim}
OVS_RUN=${DOVECOTE_OVS_RUN:-/run/openvswitch}
say() { printf 'make-plugin: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "make-plugin: run as root" >&2; exit 1; }
case "$NAME" in
  *:*) ;;
  *) NAME="$NAME:latest" ;;
esac

started=$(date +%s)
if [ "${DOVECOTE_PLUGIN_BUILD:-0}" = 1 ] || ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "building $IMAGE (docker/Dockerfile, target dovecote, on $BASE)"
  docker build -q -f "$HERE/docker/Dockerfile" --target dovecote --build-arg "BASE=$BASE" -t "$IMAGE" "$HERE" >/dev/null
fi

work=$(mktemp -d /var/tmp/dovecote-plugin.XXXXXX)
container=""
cleanup() {
  [ -n "$container" ] && docker rm -f "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/rootfs"
container=$(docker create "$IMAGE")
docker export "$container" | tar -C "$work/rootfs" -x
docker rm "$container" >/dev/null
container=""
# The mount points must exist in the rootfs: runc does not create them below a read-only path.
mkdir -p "$work/rootfs/host/proc/sys/net" "$work/rootfs/run/docker/plugins" "$work/rootfs/run/openvswitch"
python3 - "$HERE/docker/plugin/config.json" "$work/config.json" "$OVS_RUN" "${DOVECOTE_LOG_LEVEL:-info}" <<'PY'
import json, sys
source, target, ovs_run, level = sys.argv[1:]
config = json.load(open(source))
for mount in config["mounts"]:
    if mount["name"] == "ovs-run":
        mount["source"] = ovs_run
for env in config["env"]:
    if env["name"] == "DOVECOTE_LOG_LEVEL":
        env["value"] = level
json.dump(config, open(target, "w"), indent=1)
PY

if docker plugin inspect "$NAME" >/dev/null 2>&1; then
  say "replacing the plugin $NAME"
  docker plugin disable -f "$NAME" >/dev/null 2>&1 || true
  docker plugin rm -f "$NAME" >/dev/null
fi
[ -d "$OVS_RUN" ] || say "WARNING: $OVS_RUN does not exist: start Open vSwitch first, or the plugin cannot start"
docker plugin create "$NAME" "$work" >/dev/null
docker plugin enable "$NAME" >/dev/null
if [ -n "$ALIAS" ]; then
  [ "${ALIAS%:latest}" != "${NAME%:latest}" ] || { say "ALIAS must differ from NAME"; exit 2; }
  if [ -S "/run/docker/plugins/$ALIAS.sock" ]; then
    say "WARNING: /run/docker/plugins/$ALIAS.sock exists: a legacy driver serves $ALIAS and wins over the alias; stop it"
  fi
  id=$(docker plugin inspect -f '{{.ID}}' "$NAME")
  mkdir -p /etc/docker/plugins
  printf 'unix:///run/docker/plugins/%s/dovecote.sock\n' "$id" >"/etc/docker/plugins/$ALIAS.spec.tmp"
  mv "/etc/docker/plugins/$ALIAS.spec.tmp" "/etc/docker/plugins/$ALIAS.spec"
  say "alias: /etc/docker/plugins/$ALIAS.spec -> plugin $NAME ($id)"
fi
say "enabled $NAME in $(( $(date +%s) - started )) s: docker network create -d ${ALIAS:-$NAME} ..."
