#!/usr/bin/env bash
# package.sh - make test-package: the built .deb installed into a fresh root and checked.
#   tests/package.sh build/deb/bulwark_VERSION_ARCH.deb
# The root is made in a private mount namespace (root needed): this machine's /usr under
# an overlay (the package's files land in the overlay's upper layer, the real /usr is never
# written), an /etc with only the account files, an empty /var and an empty dpkg database.
# `dpkg --root` installs the package there and runs its maintainer scripts chrooted in it,
# so adduser and deb-systemd-helper really run. Checked: the files, the bulwark system
# user, the enabled unit, the conffiles (kept on upgrade), the installed binary's version
# and default config path, --check-config of the shipped config, `systemd-analyze verify`,
# `systemd-analyze security --offline=true` (exposure at most 2.0), the installed daemon
# started as root on the packaged config in a network namespace of its own (port 53 on
# 127.0.0.1 and ::1; it becomes bulwark with CapEff 0 and NoNewPrivs 1, answers, applies a
# changed feed read as bulwark, names a feed file bulwark cannot read and keeps its
# running version), and purge.
set -euo pipefail
if [[ ${1:-} != --inside ]]; then
	deb=$(realpath "${1:?usage: package.sh PACKAGE.deb}")
	[[ $(id -u) == 0 ]] || { echo "package.sh: needs root (a mount namespace)" >&2; exit 1; }
	w=$(mktemp -d /tmp/bulwark-pkgtest.XXXXXX)
	rc=0
	unshare -m --propagation private "$0" --inside "$deb" "$w" || rc=$?
	rm -rf "$w"
	exit $rc
fi
deb=$2 w=$3 R=$3/root
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

# ---- the fresh root ----
mkdir -p "$R"/{usr,etc,var/lib/dpkg/info,var/lib/dpkg/updates,var/log,tmp,run,dev,proc} "$w"/{up,wk}
for l in bin sbin lib lib64; do [[ -e /usr/$l ]] && ln -s usr/$l "$R/$l"; done
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$w/up,workdir=$w/wk" "$R/usr"
mount --bind /dev "$R/dev"
mount -t proc proc "$R/proc"
for f in passwd group shadow gshadow adduser.conf login.defs nsswitch.conf deluser.conf; do
	[[ -e /etc/$f ]] && cp -a "/etc/$f" "$R/etc/"
done
# the root's accounts: root and nogroup only, so the package must create bulwark itself
grep -E '^(root|nobody):' /etc/passwd >"$R/etc/passwd"
grep -E '^(root|nogroup):' /etc/group >"$R/etc/group"
grep -E '^(root|nobody):' /etc/shadow >"$R/etc/shadow"
grep -E '^(root|nogroup):' /etc/gshadow >"$R/etc/gshadow" 2>/dev/null || true
# PAM for adduser's chfn, man's config for systemd-analyze verify (Documentation=man:)
cp -a /etc/pam.d /etc/security "$R/etc/"
[[ -e /etc/manpath.config ]] && cp -a /etc/manpath.config "$R/etc/"
mkdir -p "$R/etc/systemd/system"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
dp() { dpkg --root="$R" --force-depends --force-confold "$@"; }

# ---- install ----
if dp -i "$deb" >"$w/install.log" 2>&1; then ok "dpkg --root -i $(basename "$deb")"; else
	bad "dpkg --root -i"; cat "$w/install.log"; fi
check "installed state" grep -qx 'Status: install ok installed' <(dpkg-query --admindir="$R/var/lib/dpkg" -s bulwark)
for f in /usr/sbin/bulwark /usr/bin/bulwarkctl /etc/bulwark/bulwark.yaml \
	/etc/bulwark/feeds/malware.domains /etc/bulwark/feeds/phishing.hosts \
	/lib/systemd/system/bulwark.service /etc/logrotate.d/bulwark \
	/usr/share/bulwark/guard/popular-domains.txt /usr/share/bulwark/www/index.html \
	/usr/share/bulwark/www/app.js /usr/share/man/man8/bulwark.8.gz \
	/usr/share/man/man8/bulwarkctl.8.gz /usr/share/man/man5/bulwark.yaml.5.gz \
	/usr/share/doc/bulwark/copyright; do
	check "file $f" test -s "$R$f"
done
check "the real /usr untouched" test ! -e /usr/sbin/bulwark -o /usr/sbin/bulwark -ef "$w/up/sbin/bulwark"
conff=$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Conffiles}' bulwark)
for f in /etc/bulwark/bulwark.yaml /etc/logrotate.d/bulwark; do
	check "conffile $f" grep -q " $f " <<<"$conff"
done
u=$(grep '^bulwark:' "$R/etc/passwd" || true)
if [[ -n $u ]]; then
	IFS=: read -r _ _ uid gid _ home shell <<<"$u"
	if ((uid < 1000)) && [[ $home == /var/lib/bulwark && $shell == */nologin ]]; then
		ok "system user bulwark (uid $uid, home $home, shell $shell)"
	else bad "user bulwark: $u"; fi
	check "group bulwark" grep -q "^bulwark:x:$gid:" "$R/etc/group"
else bad "no user bulwark in the root's /etc/passwd"; fi
check "unit enabled (multi-user.target.wants)" \
	test -L "$R/etc/systemd/system/multi-user.target.wants/bulwark.service"

# ---- the installed binary ----
v=$(chroot "$R" /usr/sbin/bulwark --version)
[[ $v == "bulwark "[0-9]* ]] && ok "--version: $v" || bad "--version: $v"
# (the whole --help is read before grep: grep -m1 or -q stopping early would kill the
# writer with SIGPIPE, which pipefail turns into a failure)
help=$(chroot "$R" /usr/sbin/bulwark --help)
h=$(grep -m1 'default: ' <<<"$help")
[[ $h == *"default: /etc/bulwark/bulwark.yaml"* ]] && ok "default config: $(sed 's/^ *//' <<<"$h")" ||
	bad "default config path: $h"
help=$(chroot "$R" /usr/bin/bulwarkctl --help)
grep -q '/etc/bulwark/bulwark.yaml' <<<"$help" &&
	ok "bulwarkctl's default config /etc/bulwark/bulwark.yaml" || bad "bulwarkctl's default config"
if chroot "$R" /usr/sbin/bulwark --check-config /etc/bulwark/bulwark.yaml >"$w/check.log" 2>&1; then
	ok "--check-config /etc/bulwark/bulwark.yaml: $(tail -1 "$w/check.log")"
else bad "--check-config"; cat "$w/check.log"; fi
check "shipped config: port 53 on 127.0.0.1 and ::1" grep -q 'address: "::1", port: 53' "$R/etc/bulwark/bulwark.yaml"
check "shipped config: state-dir /var/lib/bulwark" grep -qx '  state-dir: /var/lib/bulwark' "$R/etc/bulwark/bulwark.yaml"
check "shipped config: control socket /run/bulwark" grep -qx '  control-socket: /run/bulwark/control.sock' "$R/etc/bulwark/bulwark.yaml"
check "man bulwark.yaml(5) renders" sh -c "zcat '$R/usr/share/man/man5/bulwark.yaml.5.gz' | man -l - 2>/dev/null | grep -q state-dir"

# ---- the unit ----
if chroot "$R" systemd-analyze verify /lib/systemd/system/bulwark.service >"$w/verify.log" 2>&1; then
	ok "systemd-analyze verify bulwark.service"
else bad "systemd-analyze verify"; cat "$w/verify.log"; fi
chroot "$R" systemd-analyze security --offline=true --no-pager /lib/systemd/system/bulwark.service \
	>"$w/security.log" 2>&1 || true
exposure=$(grep -o 'Overall exposure level for bulwark.service: [0-9.]*' "$w/security.log" | grep -o '[0-9.]*$' || true)
if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
	ok "systemd-analyze security --offline=true: exposure $exposure (at most 2.0)"
else bad "systemd-analyze security: exposure '${exposure}'"; tail -5 "$w/security.log"; fi

# ---- the installed daemon, started as root on the packaged config ----
# In a network namespace of its own (only lo): port 53 on 127.0.0.1 and ::1. It must bind,
# become the bulwark user (no capability, no_new_privs), answer, reload a feed on SIGHUP
# as that user, and name at start the feed file that user cannot read, whose running
# version a reload keeps. Fetched feeds have no network here: they stay without a copy.
run_daemon() {
	ip link set lo up
	local log=$w/daemon.log name first
	first=$(awk '!/^#/ { print; exit }' "$R/etc/bulwark/feeds/malware.domains")
	name=$(awk '!/^#/ && NF >= 2 { print $2; exit }' "$R/etc/bulwark/feeds/phishing.hosts")
	chmod 600 "$R/etc/bulwark/feeds/phishing.hosts"   # root's alone
	chroot "$R" /usr/sbin/bulwark -f -c /etc/bulwark/bulwark.yaml >"$log" 2>&1 &
	local pid=$! i
	for i in $(seq 100); do
		kdig @127.0.0.1 -p 53 +time=1 +retry=0 "$first" 2>/dev/null | grep -q NXDOMAIN && break
		sleep 0.1
	done
	local st; st=$(cat /proc/$pid/status)
	local uid; uid=$(awk -F: '$1 == "bulwark" { print $3 }' "$R/etc/passwd")
	grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$st" && ok "daemon runs as bulwark (uid $uid)" ||
		bad "daemon uid: $(grep ^Uid <<<"$st")"
	grep -qE '^CapEff:\s+0+$' <<<"$st" && ok "daemon CapEff 0" || bad "$(grep ^CapEff <<<"$st")"
	grep -qE '^NoNewPrivs:\s+1$' <<<"$st" && ok "daemon NoNewPrivs 1" || bad "$(grep ^NoNewPrivs <<<"$st")"
	local a; a=$(kdig @::1 -p 53 +edns +time=2 +retry=0 "$first" 2>&1)
	grep -q 'EDE: 15' <<<"$a" && ok "answers on [::1]:53: $first blocked, EDE 15" ||
		{ bad "no blocked answer for $first on ::1"; echo "$a"; }
	kdig @127.0.0.1 -p 53 +time=2 +retry=0 "$name" | grep -q NXDOMAIN && ok "$name blocked (loaded as root)" ||
		bad "$name not blocked"
	grep -q "feed phishing: /etc/bulwark/feeds/phishing.hosts is not readable by user bulwark" "$log" &&
		ok "the unreadable feed file named at start" || bad "no word of the unreadable feed file"
	# a changed feed file, read again as bulwark (the file watcher's look, as on SIGHUP:
	# a reload re-reads the whole config, which names the unreadable file and keeps all)
	echo "reloaded.example" >>"$R/etc/bulwark/feeds/malware.domains"
	kill -HUP "$pid"
	for i in $(seq 30); do
		a=$(kdig @127.0.0.1 -p 53 +edns +time=1 +retry=0 reloaded.example 2>&1)
		grep -q 'EDE: 15' <<<"$a" && break
		sleep 0.2
	done
	grep -q 'EDE: 15' <<<"$a" && ok "a changed feed applies, read as bulwark" ||
		{ bad "the changed feed did not apply"; echo "$a"; }
	grep -q "reload failed, keeping the running configuration: .*phishing.hosts': Permission denied" "$log" &&
		ok "SIGHUP: the unreadable feed file named, the running configuration kept" ||
		bad "SIGHUP: no word of the unreadable feed file"
	kdig @127.0.0.1 -p 53 +time=2 +retry=0 "$name" | grep -q NXDOMAIN &&
		ok "the unreadable feed keeps its running version" || bad "the unreadable feed's rules were lost"
	kill -TERM "$pid"
	wait "$pid" && ok "daemon stopped cleanly" || bad "daemon exit status $?"
	((fails)) && { echo "---- daemon log"; tail -40 "$log"; }
	chmod 644 "$R/etc/bulwark/feeds/phishing.hosts"
}
if command -v kdig >/dev/null; then
	export -f run_daemon ok bad
	export R w
	unshare -n bash -c 'fails=0; run_daemon; exit $fails' || fails=$((fails + $?))
else
	bad "kdig (knot-dnsutils) is needed to query the installed daemon"
fi

# ---- upgrade keeps a changed conffile; purge removes the state ----
echo "# changed by the admin" >>"$R/etc/bulwark/bulwark.yaml"
dp -i "$deb" >"$w/upgrade.log" 2>&1 || { bad "reinstall"; cat "$w/upgrade.log"; }
check "reinstall keeps the admin's conffile" grep -q '^# changed by the admin' "$R/etc/bulwark/bulwark.yaml"
mkdir -p "$R/var/lib/bulwark/feeds" "$R/var/log/bulwark"
echo x >"$R/var/lib/bulwark/feeds/urlhaus.hosts"
echo '{}' >"$R/var/log/bulwark/events.jsonl"
dp --purge bulwark >"$w/purge.log" 2>&1 || { bad "purge"; cat "$w/purge.log"; }
check "purge removes /var/lib/bulwark" test ! -e "$R/var/lib/bulwark"
check "purge removes /var/log/bulwark" test ! -e "$R/var/log/bulwark"
check "purge removes /etc/bulwark" test ! -e "$R/etc/bulwark"
check "purge removes the binaries" test ! -e "$R/usr/sbin/bulwark"

if ((fails)); then echo "package: $fails check(s) failed"; exit 1; fi
echo "package: all checks passed"
