#!/bin/sh
# man.sh - a man page generated from the text that already documents a program, so that no
# second copy is kept by hand (pandoc, from Debian's pandoc package):
#   man.sh help PROGRAM VERSION   PROGRAM(8) from `PROGRAM --help`: the Usage lines become
#                                 SYNOPSIS, the first paragraph DESCRIPTION, each "Title:"
#                                 line a section, indented blocks stay as they are aligned
#   man.sh config FILE.md VERSION bulwark.yaml(5) from docs/config.md
set -eu
mode=$1 src=$2 version=$3
command -v pandoc >/dev/null || { echo "man.sh: pandoc is missing (apt-get install pandoc)" >&2; exit 1; }
case $mode in
help)
	name=$(basename "$src")
	case $name in
	bulwark) what="protective DNS resolver" ;;
	bulwarkctl) what="control a running bulwark daemon" ;;
	*) what="$name" ;;
	esac
	{
		printf -- '---\ntitle: %s\nsection: 8\nheader: System Administration\nfooter: bulwark %s\n---\n\n' \
			"$(echo "$name" | tr a-z A-Z)" "$version"
		printf '# NAME\n\n%s - %s\n\n' "$name" "$what"
		"$src" --help | awk -v name="$name" '
		function flush() {
			if (!n) return
			if (code) { print "```"; for (i = 1; i <= n; i++) print buf[i]; print "```" }
			else for (i = 1; i <= n; i++) print esc(buf[i])
			print ""; n = 0
		}
		function esc(s) { gsub(/[\\*_<>\[\]#]/, "\\\\&", s); return s }
		/^Usage: / { print "# SYNOPSIS\n"; sub(/^Usage: /, ""); syn = 1 }
		syn && /^$/ { syn = 0; print ""; next }
		syn { sub(/^ +/, ""); print "| " esc($0); next }
		/^$/ { flush(); next }
		/^[A-Z][A-Za-z ]*:$/ { flush(); t = toupper(substr($0, 1, length($0) - 1)); print "# " t "\n"; next }
		{
			c = ($0 ~ /^ /)
			if (n && c != code) flush()
			if (!desc && !c) { print "# DESCRIPTION\n"; desc = 1 }
			code = c; buf[++n] = $0
		}
		END { flush()
			print "# SEE ALSO\n"
			if (name == "bulwark") print "**bulwarkctl**(8), **bulwark.yaml**(5)"
			else print "**bulwark**(8), **bulwark.yaml**(5)"
		}'
	} | pandoc -f markdown-smart -t man -s
	;;
config)
	# docs/config.md's level-2 headings become sections (.SH), level-3 subsections
	{
		printf -- '---\ntitle: BULWARK.YAML\nsection: 5\nheader: File Formats\nfooter: bulwark %s\n---\n\n' "$version"
		printf '## NAME\n\nbulwark.yaml - configuration file of the bulwark DNS resolver\n\n'
		printf '## SYNOPSIS\n\n/etc/bulwark/bulwark.yaml\n\n'
		printf '## DESCRIPTION\n\n'
		sed '1{/^# /d}' "$src"
		printf '\n## SEE ALSO\n\n**bulwark**(8), **bulwarkctl**(8)\n'
	} | pandoc -f markdown-smart -t man -s --shift-heading-level-by=-1 \
		--lua-filter="$(dirname "$0")/man-tables.lua"
	;;
*) echo "usage: man.sh help PROGRAM VERSION | config FILE.md VERSION" >&2; exit 2 ;;
esac
