#!/bin/sh
# version.sh - the version `bulwark --version` prints, computed at build time.
# `git describe --tags --always --dirty` of the checkout: a release tag vX.Y.Z gives X.Y.Z,
# then -N-gHASH for commits after it and -dirty for uncommitted changes. While the
# repository has no release tag, describe gives only a hash, so the VERSION file's number
# leads it (0.1.0+gHASH). Outside a git checkout (a tarball): VERSION's number +unknown.
cd "$(dirname "$0")/.." || exit 1
base=$(cat VERSION 2>/dev/null) || base=0.1.0
if [ -e .git ] && d=$(git describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null); then
	case $d in
	v[0-9]*) echo "${d#v}" ;;
	*) echo "$base+g$d" ;;
	esac
else
	echo "$base+unknown"
fi
