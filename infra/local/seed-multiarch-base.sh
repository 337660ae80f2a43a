#!/usr/bin/env bash
# Builds a small multi-arch base image (an OCI image index) from
# busybox-static builds, one per architecture, with no internet needed, and
# pushes it to a registry on plain HTTP. Prints the index digest.
#   infra/local/seed-multiarch-base.sh REGISTRY [NAME:TAG] [CONTENT] [ARCHES]
# ARCHES is a comma-separated list of amd64 and arm64 (default both). The
# host's own /bin/busybox is used for its architecture; the other one comes
# from the Debian package busybox-static:<arch> that infra/local/setup.sh
# unpacks into $CRTASK_BUSYBOX_DIR (default /usr/local/share/crtask/busybox).
# CONTENT is written to /etc/base-release (a new CONTENT is a base update).
set -euo pipefail
registry=${1:?usage: seed-multiarch-base.sh REGISTRY [NAME:TAG] [CONTENT] [ARCHES]}
name=${2:-base:multi}
content=${3:-crtask seed base}
arches=${4:-amd64,arm64}
bbdir=${CRTASK_BUSYBOX_DIR:-/usr/local/share/crtask/busybox}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
B=(--storage-driver vfs --root "$work/root" --runroot "$work/runroot")
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry" > "$CONTAINERS_REGISTRIES_CONF"

case "$(uname -m)" in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) host=$(uname -m) ;; esac
list="$registry/$name"
buildah "${B[@]}" manifest create "$list" >/dev/null
IFS=, read -r -a want <<< "$arches"
for arch in "${want[@]}"; do
  if [ "$arch" = "$host" ]; then
    bb=/bin/busybox
  else
    bb="$bbdir/$arch/busybox"
  fi
  [ -x "$bb" ] || { echo "seed-multiarch-base: no $arch busybox at $bb (run infra/local/setup.sh)" >&2; exit 1; }
  ctr=$(buildah "${B[@]}" from scratch)
  mnt=$(buildah "${B[@]}" mount "$ctr")
  mkdir -p "$mnt/bin" "$mnt/etc" "$mnt/tmp" "$mnt/root"
  cp "$bb" "$mnt/bin/busybox"
  # The applet list comes from the host's busybox: both are the same Debian build.
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$mnt/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$mnt/etc/passwd"
  printf 'root:x:0:\n' > "$mnt/etc/group"
  printf '%s\n' "$content" > "$mnt/etc/base-release"
  buildah "${B[@]}" umount "$ctr" >/dev/null
  buildah "${B[@]}" config --cmd '["/bin/sh"]' --env PATH=/bin --os linux --arch "$arch" "$ctr"
  id=$(buildah "${B[@]}" commit --quiet --timestamp 0 "$ctr" "seed-$arch")
  buildah "${B[@]}" rm "$ctr" >/dev/null
  buildah "${B[@]}" manifest add --os linux --arch "$arch" "$list" "$id" >/dev/null
done
buildah "${B[@]}" manifest push --quiet --all --tls-verify=false --digestfile "$work/digest" "$list" "docker://$list"
cat "$work/digest"
echo
