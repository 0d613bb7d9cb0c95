#!/usr/bin/env bash
# deps.sh - installs the Debian packages Bulwark needs to build, run and test
# (tools/deps.sh bench: and to benchmark against its peers).
# Idempotent and quiet: does nothing when everything is installed.
set -euo pipefail
PKGS=(build-essential pkg-config clang libclang-rt-14-dev
      libunbound-dev libevent-dev libyaml-dev libjansson-dev libssl-dev libcmocka-dev libknot-dev dns-root-data
      knot-dnsutils bind9-dnsutils ldnsutils nsd dnsperf unbound-host
      knot
      python3 python3-dnspython python3-pytest iproute2 util-linux procps)
PKGS+=(libcurl4-openssl-dev nginx openssl) # feeds over HTTPS (src/feeds), e2e feed server
# dnstap (src/telemetry/dnstap.c) and the readers its tests use; promtool checks /metrics
PKGS+=(libfstrm-dev libprotobuf-c-dev protobuf-c-compiler fstrm-bin dnstap-ldns prometheus protobuf-compiler curl)
PKGS+=(libsqlite3-dev) # the query log (src/telemetry/querylog.c)
PKGS+=(zlib1g-dev) # gzip-compressed feeds (src/policy/feed_read.c)
PKGS+=(libsystemd-dev) # sd_notify: READY/RELOADING/STATUS/watchdog under systemd (src/main.c)
PKGS+=(libpsl-dev libicu-dev publicsuffix dnstwist) # look-alike guard (src/guard), its oracle
# DoT/DoH (src/net/tls.c, doh.c) and the real clients of their tests and bench
PKGS+=(libnghttp2-dev python3-h2 chromium libnss3-tools nghttp2-client)
# bulwarkctl client setup --qr: the QR code of a device's DoH URL (tools/ctl_setup.c)
PKGS+=(libqrencode-dev)
# test only: zbarimg reads that QR code back (tests/e2e/test_clientctl.py)
PKGS+=(zbar-tools)
# test only: the fault suite steps the daemon's wall clock with libfaketime (tests/faults)
PKGS+=(faketime)
# the dashboard's charts (www/, served as /vendor/chart.js) and its browser tests
# (tests/e2e/test_dashboard.py: headless Chromium driven by selenium)
PKGS+=(libjs-chart.js chromium-driver python3-selenium)
# the Debian package (make deb, make test-package): its build, man pages, lintian
PKGS+=(dpkg-dev debhelper fakeroot pandoc lintian systemd man-db adduser)
# bench only (tools/deps.sh bench, run by make bench): bench/internet (dnsdist plays the
# network between resolvers and the NSD servers) and the peers of the cold-cache
# benchmark (bench/cold.sh); bc for its figures. Not for make run or make test: these
# are resolver daemons that a machine would start on port 53 at its next boot.
if [[ ${1:-} == bench ]]; then
	PKGS+=(dnsdist unbound pdns-recursor knot-resolver bc)
fi
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
SUDO=""
[[ $(id -u) == 0 ]] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
# packaged daemons (nsd) must not start system-wide instances during install
created=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	created=1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
((created)) && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
