#!/usr/bin/env bash
# check-banned.sh - fails if the sources use a banned function (STYLE rule 19).
set -euo pipefail
cd "$(dirname "$0")/.."
pat='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|alloca|gets)[[:space:]]*\('
if grep -rnE "$pat" src tools --include='*.c' --include='*.h'; then
	echo "banned function used (see STYLE.md rule 19)" >&2
	exit 1
fi
