#!/usr/bin/env bash
# Installs what the local stack needs, only where it is missing:
# buildah (builds), runc (the OCI runtime of builds' RUN instructions, whose
# output buildah's chroot isolation can lose), docker-registry (the CNCF distribution registry),
# busybox-static (the seed base image), git, curl, htpasswd (apache2-utils:
# the tests' registry that requires a credential, as a private one does);
# debootstrap and dpkg-dev (the OS patching tests build a Debian image and an
# apt repository); chromium and chromium-driver (the dashboard's tests drive
# a headless browser over WebDriver); qemu-user-static with its binfmt handlers registered
# (multi-platform builds run foreign platforms under emulation) and the
# other architecture's busybox-static (the multi-arch seed base image).
set -euo pipefail

need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
# The seed image copies /bin/busybox: it must be the static build.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v dpkg-scanpackages >/dev/null 2>&1 || need+=(dpkg-dev)
[ -f /etc/containers/policy.json ] || need+=(golang-github-containers-common)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
case "$(uname -m)" in
  x86_64) foreign=arm64 qemu=aarch64 ;;
  aarch64) foreign=amd64 qemu=x86_64 ;;
  *) foreign="" qemu="" ;;
esac
[ -z "$qemu" ] || [ -x "/usr/bin/qemu-$qemu-static" ] || need+=(qemu-user-static)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Foreign platforms: the kernel runs their binaries through qemu once the
# binfmt handler is registered (the F flag opens the interpreter now, so it
# works inside build containers too). Registration is for the whole machine
# and lasts until reboot.
if [ -n "$qemu" ]; then
  binfmt=/proc/sys/fs/binfmt_misc
  [ -e "$binfmt/register" ] || $SUDO mount -t binfmt_misc binfmt_misc "$binfmt"
  if [ ! -e "$binfmt/qemu-$qemu" ]; then
    conf=/usr/lib/binfmt.d/qemu-$qemu.conf
    [ -f "$conf" ] || { echo "setup: $conf is missing (qemu-user-static)" >&2; exit 1; }
    $SUDO sh -c "cat '$conf' > '$binfmt/register'"
  fi
  # The other architecture's static busybox, for the multi-arch seed base
  # (infra/local/seed-multiarch-base.sh).
  bb=/usr/local/share/crtask/busybox/$foreign/busybox
  if [ ! -x "$bb" ]; then
    dpkg --print-foreign-architectures | grep -qx "$foreign" || $SUDO dpkg --add-architecture "$foreign"
    $SUDO apt-get update -qq
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq "busybox-static:$foreign" 2>/dev/null)
    dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
    $SUDO install -D -m 0755 "$tmp/x/bin/busybox" "$bb"
    rm -rf "$tmp"
  fi
fi
echo "setup: qemu-$qemu binfmt handler registered, $foreign busybox at /usr/local/share/crtask/busybox/$foreign"
echo "setup: buildah $(buildah --version | awk '{print $3}'), runc, docker-registry, busybox-static, git, htpasswd, debootstrap, dpkg-dev, chromium ready"
