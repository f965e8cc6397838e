#!/usr/bin/env bash
# Builds etcdhcp_<version>_all.deb (dpkg-buildpackage -us -uc -b) in a copy of the work
# tree -- tracked files plus untracked ones git does not ignore, so uncommitted work is
# packaged while .venv and build leftovers are not -- and leaves the tree untouched.
# Usage: scripts/build-deb.sh [OUTDIR]   (default dist/); prints the .deb's path.
# Needs debhelper, dh-python, python3-all, python3-setuptools, dpkg-dev
# (scripts/bootstrap.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(realpath -m "${1:-dist}")
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/etcdhcp/__init__.py)
deb="etcdhcp_${version}_all.deb"
for tool in dpkg-buildpackage dh dh_python3 git; do
  command -v "$tool" >/dev/null || {
    echo "build-deb: $tool is missing: run scripts/bootstrap.sh" >&2
    exit 1
  }
done

work=$(mktemp -d /var/tmp/etcdhcp-build-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etcdhcp" "$out"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp --parents -t "$work/etcdhcp"

# Debian's /usr/bin/python3 must build it, not a python3 earlier on PATH (pyenv, venv).
if ! (cd "$work/etcdhcp" &&
  env -u PYTHONPATH -u VIRTUAL_ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
fi
mv "$work/$deb" "$out/$deb"
echo "$out/$deb"
