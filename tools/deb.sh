#!/usr/bin/env bash
# deb.sh - make deb: the Debian package, built by dpkg-buildpackage -us -uc -b from a copy
# of the working tree (the files git tracks or would track) in build/deb/src, so the
# checkout stays clean; the .deb ends in build/deb/bulwark_VERSION_ARCH.deb.
# Installs what the build needs (dpkg-dev, debhelper, the Build-Depends) when missing.
# The binary's --version is git describe of the checkout (tools/version.sh), passed in.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[[ $(id -u) == 0 ]] || SUDO=sudo
need=()
for p in dpkg-dev debhelper fakeroot; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
	echo "installing: ${need[*]}" >&2
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Build-Depends that are missing, without their version constraints
if ! out=$(dpkg-checkbuilddeps 2>&1); then
	mapfile -t need < <(sed -n 's/.*Unmet build dependencies: //p' <<<"$out" |
		sed -e 's/([^)]*)//g' -e 's/|[^ ]*//g' | tr ' ' '\n' | grep -v '^$' | sort -u)
	echo "installing: ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

version=$(tools/version.sh)
stage=build/deb/src/bulwark
rm -rf build/deb
mkdir -p "$stage"
if [[ -e .git ]]; then
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
		xargs -0 cp -a --parents -t "$stage"
else
	tar -c --exclude=./build --exclude=./build-san --exclude=./state . | tar -x -C "$stage"
fi
(cd "$stage" && BW_VERSION="$version" DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b) >build/deb/build.log 2>&1 ||
	{ tail -40 build/deb/build.log; echo "deb.sh: dpkg-buildpackage failed (build/deb/build.log)" >&2; exit 1; }
mv build/deb/src/bulwark_*.deb build/deb/
ls build/deb/bulwark_*.deb
