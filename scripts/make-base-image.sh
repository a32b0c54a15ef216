#!/usr/bin/env bash
# Make the Dockerfiles' base image locally from Debian's own packages, for machines that cannot
# reach a container registry: debootstrap --variant=minbase bookworm, then `docker import`.
#
#   scripts/make-base-image.sh [TAG]       (default TAG: dovecote-base:bookworm)
#   DOVECOTE_BASE=dovecote-base:bookworm docker-compose up -d --build
#
# Needs root and the debootstrap package. debootstrap picks its own default Debian mirror; set
# DEBIAN_MIRROR to a mirror URL of your own to use that instead.
# Does nothing when TAG already exists (remove the image to rebuild it). The host's own CAs in
# /usr/local/share/ca-certificates go into the image, so pip works behind a TLS-inspecting proxy.
set -euo pipefail
TAG=${1:-dovecote-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-}
[ "$(id -u)" = 0 ] || { echo "make-base-image: run as root" >&2; exit 1; }
if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "make-base-image: $TAG exists" >&2
  exit 0
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
root=$(mktemp -d /var/tmp/dovecote-base.XXXXXX)
trap 'rm -rf "$root" "$root.log"' EXIT
echo "make-base-image: debootstrap bookworm into $root (a minute or two)" >&2
# The mirror argument is passed only when the operator gave one: otherwise debootstrap chooses.
mirror_arg=()
[ -n "$MIRROR" ] && mirror_arg=("$MIRROR")
if ! debootstrap --variant=minbase bookworm "$root" "${mirror_arg[@]}" >"$root.log" 2>&1; then
  tail -20 "$root.log" >&2
  exit 2
fi
# The images then trust what this host trusts: its local CAs (a TLS-inspecting proxy's, say) are
# picked up when the Dockerfiles install ca-certificates.
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
# what the official debian:*-slim images do: no docs, no apt caches left in layers
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' -m "debootstrap --variant=minbase bookworm${MIRROR:+ ($MIRROR)}" - "$TAG" >/dev/null
echo "make-base-image: built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG") bytes)" >&2
