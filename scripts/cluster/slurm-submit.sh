#!/bin/bash
# Submits an infodiscard analysis as a Slurm job array of $SHARDS shards and the merge job that depends on it.
# Usage: SHARDS=8 MODEL=model.json IMAGES=images/ PARTS=parts/ REPORT=report.json [HTML=report.html] \
#        [ANALYZE_ARGS="--layers a,b --max-steps 200"] [INFODISCARD="node /opt/infodiscard/dist/cli.js"] \
#        [LOGS=logs] [SBATCH_ARGS="--partition=cpu --account=me"] scripts/cluster/slurm-submit.sh
# A checkpoint series: COMMAND=compare-checkpoints MODEL=<folder of checkpoints> REPORT=<series.json>, no HTML.
# Prints the array's and the merge's job ids.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${SHARDS:?set SHARDS}" "${MODEL:?set MODEL}" "${IMAGES:?set IMAGES}" "${PARTS:?set PARTS}" "${REPORT:?set REPORT}"
export SHARDS MODEL IMAGES PARTS REPORT
logs="${LOGS:-.}"
mkdir -p "$logs" "$PARTS"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="0-$((SHARDS - 1))" --output="$logs/infodiscard-%A_%a.out" --export=ALL "$here/slurm-shard.sbatch")
array=${array%%;*}
# afterany: the merge runs even when a shard failed, and names what is missing (exit 3, a partial report).
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterany:$array" --output="$logs/infodiscard-merge-%j.out" --export=ALL "$here/slurm-merge.sbatch")
echo "array $array"
echo "merge ${merge%%;*}"
