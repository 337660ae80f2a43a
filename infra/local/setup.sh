#!/usr/bin/env bash
# Installs what the local stack needs, only where it is missing:
# buildah (builds), runc (the OCI runtime of builds' RUN instructions, whose
# output buildah's chroot isolation can lose), docker-registry (the CNCF distribution registry),
# busybox-static (the seed base image), git, curl, htpasswd (apache2-utils:
# the tests' registry that requires a credential, as a private one does);
# debootstrap and dpkg-dev (the OS patching tests build a Debian image and an
# apt repository); chromium and chromium-driver (the dashboard's tests drive
# a headless browser over WebDriver).
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

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "setup: buildah $(buildah --version | awk '{print $3}'), runc, docker-registry, busybox-static, git, htpasswd, debootstrap, dpkg-dev, chromium ready"
