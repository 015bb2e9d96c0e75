#!/usr/bin/env bash
# Inside a mount and network namespace of its own: a writable overlay of /
# (the machine's files below, changes kept in memory) becomes the root, and
# deb_install_stage2.sh installs the packages there with apt and runs a
# request through the installed kernel.
set -euo pipefail
work=$1
deb=$2
sdk=$3
ip link set lo up
# The overlay's changes go to the work directory (on disk: the sanitizer
# build's binaries are large), removed by deb_package_test.sh afterwards.
mkdir -p "$work/root/upper" "$work/root/work" "$work/root/merged"
root=$work/root/merged
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/root/upper,workdir=$work/root/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root/run"
# Nothing of an earlier install on this machine may hide what the package does.
rm -rf "$root/etc/airlock" "$root/var/lib/airlock" "$root/usr/lib/airlock"
mkdir -p "$root/tmp/packages"
cp "$deb" "$sdk" "$root/tmp/packages/"
cp "$(dirname "${BASH_SOURCE[0]}")/deb_install_stage2.sh" "$root/tmp/stage2.sh"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
exec /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
  bash /tmp/stage2.sh "$(basename "$deb")" "$(basename "$sdk")"
