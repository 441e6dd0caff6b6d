#!/usr/bin/env bash
# Re-vendors uPlot (MIT, by Leon Sorokin) from the npm registry into this
# directory: the minified IIFE build, its stylesheet and its LICENSE. The
# version is pinned below; change it here to upgrade, run this script (or
# `go generate ./internal/web/...`), review the diff and commit the files.
# Needs npm and tar. Nothing is fetched at run time: the server embeds
# these files.
set -euo pipefail

UPLOT_VERSION=1.6.32

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# npm pack downloads the published tarball and checks it against the
# registry's integrity hash; --ignore-scripts runs no package code.
(cd "$tmp" && npm pack --silent --ignore-scripts "uplot@${UPLOT_VERSION}" >/dev/null)
tar -xzf "$tmp/uplot-${UPLOT_VERSION}.tgz" -C "$tmp"

pkg="$tmp/package"
got="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n1)"
if [ "$got" != "$UPLOT_VERSION" ]; then
  echo "update.sh: npm gave uplot $got, want $UPLOT_VERSION" >&2
  exit 1
fi

cp "$pkg/dist/uPlot.iife.min.js" "$here/uPlot.iife.min.js"
cp "$pkg/dist/uPlot.min.css" "$here/uPlot.min.css"
cp "$pkg/LICENSE" "$here/LICENSE.uPlot"
echo "$UPLOT_VERSION" > "$here/UPLOT_VERSION"
echo "vendored uplot $UPLOT_VERSION into $here"
