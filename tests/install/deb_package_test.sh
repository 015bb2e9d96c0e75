#!/usr/bin/env bash
# deb_package_test.sh BUILD_DIR WORK_DIR: builds the packages with CPack,
# checks their contents, then installs and runs them in a namespace
# (deb_install_inside.sh).
set -euo pipefail
build=$1
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $(id -u) != 0 ]]; then
  echo "deb_package: needs root (a mount namespace, an overlay of / and chroot); skipped"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
if ! (cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/packages") \
    > "$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  exit 1
fi
deb=$(ls "$work"/packages/airlock_*_amd64.deb)
sdk=$(ls "$work"/packages/airlock-sdk_*_all.deb)

# What the kernel needs to start is in the runtime package, where it looks.
contents=$(dpkg-deb -c "$deb")
for path in ./usr/lib/airlock/bin/airlockd ./usr/lib/airlock/bin/airlock-enclave \
    ./usr/lib/airlock/bin/airlock-agent ./usr/lib/airlock/bin/airlock-setup ./usr/bin/airlock \
    ./usr/bin/airlockd ./usr/lib/airlock/plugins/airlock_isolator_process.so \
    ./usr/lib/airlock/plugins/airlock_tunnel_pgwire.so \
    ./usr/lib/airlock/plugins/airlock_connector_postgres.so \
    ./usr/lib/systemd/system/airlockd.service ./usr/share/airlock/grafana/airlock-dashboard.json \
    ./usr/share/airlock/examples/quickstart-data/customers.csv; do
  grep -q " $path\( \|$\)" <<< "$contents" || { echo "missing from $deb: $path"; exit 1; }
done
if grep -q "_test\|/tests/" <<< "$contents"; then
  echo "test files in $deb:"; grep "_test\|/tests/" <<< "$contents"; exit 1
fi
dpkg-deb -f "$deb" Depends | grep -q "libpg-query" || { echo "no shared-library dependencies"; exit 1; }
sdk_contents=$(dpkg-deb -c "$sdk")
grep -q " ./usr/include/airlock/c/airlock_plugin.h$" <<< "$sdk_contents" || {
  echo "the SDK package has no headers"; exit 1; }

# The same layout under any prefix: airlockd finds its plugins and enclave
# from its own path, airlock-setup its examples.
cmake --install "$build" --component airlock --prefix "$work/opt/airlock" > /dev/null
"$work/opt/airlock/lib/airlock/bin/airlock-setup" --config-dir "$work/opt/etc" \
  --state-dir "$work/opt/state" --user "$(id -un)" > /dev/null
"$work/opt/airlock/bin/airlockd" check-config --config "$work/opt/etc/airlock.json" ||
  { echo "an install under $work/opt/airlock does not check"; exit 1; }

status=0
unshare --mount --net --propagation private --fork \
  bash "$here/deb_install_inside.sh" "$work" "$deb" "$sdk" || status=$?
rm -rf "$work/root" "$work/opt" "$work/packages/_CPack_Packages"
exit $status
