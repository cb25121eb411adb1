#!/usr/bin/env bash
# Build the local base image that stands in for the official python slim image
# where no container registry can be reached: Debian bookworm (debootstrap
# --variant=minbase, from Debian's package mirror) plus Debian's python3 and its
# venv module, imported with `podman import`. It carries the host's CA bundle so
# builds can reach PyPI through a TLS-intercepting proxy, as the host does.
#
# Prints the image name. Cached: the tag is a hash of this script and of the
# host's CA bundle, so a second run (or a later CI step on the same machine)
# reuses the image and takes well under a second.
set -euo pipefail

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
here="$(cd "$(dirname "$0")" && pwd)"

key="$( (cat "$here/build-base.sh"; echo "$MIRROR"; cat "$CA_BUNDLE" 2>/dev/null) | sha256sum | cut -c1-12)"
image="localhost/switchyard-base:${SUITE}-${key}"

if podman image exists "$image"; then
    echo "$image"
    exit 0
fi

for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "build-base: $tool is missing" >&2; exit 1; }
done

workdir="$(mktemp -d /var/tmp/switchyard-base.XXXXXX)"
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

echo "build-base: debootstrap $SUITE into $rootfs" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

# The host's trust store (it may hold a proxy's CA that PyPI traffic needs).
if [[ -f "$CA_BUNDLE" ]]; then
    cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
# What an image does not need: package caches, lists, documentation.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
       "$rootfs"/var/log/*.log "$rootfs"/tmp/*

tar --numeric-owner -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
    --change 'CMD ["python3"]' \
    - "$image" >&2
echo "$image"
