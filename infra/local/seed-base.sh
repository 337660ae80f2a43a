#!/usr/bin/env bash
# Builds a small base image from busybox-static (no internet needed) and
# pushes it to a registry on plain HTTP. Prints the pushed digest.
#   infra/local/seed-base.sh REGISTRY [NAME:TAG] [EXTRA-FILE-CONTENT]
# EXTRA-FILE-CONTENT, when given, is written to /etc/base-release so the same
# name can be pushed again with different content (a base-image update).
set -euo pipefail
registry=${1:?usage: seed-base.sh REGISTRY [NAME:TAG] [CONTENT]}
name=${2:-base:1}
content=${3:-crtask seed base}
work=$(mktemp -d)
trap 'buildah $B rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
B="--storage-driver vfs --root $work/root --runroot $work/runroot"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry" > "$CONTAINERS_REGISTRIES_CONF"

ctr=$(buildah $B from scratch)
mnt=$(buildah $B mount "$ctr")
mkdir -p "$mnt/bin" "$mnt/etc" "$mnt/tmp" "$mnt/root"
cp /bin/busybox "$mnt/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$mnt/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$mnt/etc/passwd"
printf 'root:x:0:\n' > "$mnt/etc/group"
printf '%s\n' "$content" > "$mnt/etc/base-release"
buildah $B umount "$ctr" >/dev/null
buildah $B config --cmd '["/bin/sh"]' --env PATH=/bin --os linux --arch "$(buildah $B info --format '{{.host.arch}}' 2>/dev/null || echo amd64)" "$ctr"
buildah $B commit --quiet --timestamp 0 "$ctr" "$registry/$name" >/dev/null
buildah $B push --quiet --digestfile "$work/digest" "$registry/$name" "docker://$registry/$name"
cat "$work/digest"
echo
