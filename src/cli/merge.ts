/**
 * `infodiscard merge <parts… | folder> --out report.json [--html report.html]`: the parts of a sharded analysis
 * (analyze --shard I/N) as the report one process would have written. Refuses parts of different analyses; with
 * shards missing, writes a 'partial' report naming them and exits 3.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../engine/errors';
import { writeReport } from '../engine/reportFile';
import { mergeShardParts, missingShardsText, type MergedShards } from '../engine/shards';
import { readParts } from '../engine/shardFiles';
import { isSeriesPartsFolder, mergeSeries } from '../engine/series';

export const MERGE_USAGE = `infodiscard merge — the parts of a sharded analysis (analyze … --shard I/N) as one report

Usage:
  infodiscard merge <parts folder | shard-I-of-N.json …> --out <report.json> [--html <report.html>]

A folder written by "compare-checkpoints --shard" (it holds series-parts.json) is merged checkpoint by checkpoint:
each checkpoint's report beside --out (<checkpoint>.json) and --out itself the series file for Open Report….

The parts must come from one analysis (same model bytes, settings, layers and images); a mixture is refused.
With every shard present the report is the one a single process writes (maps and SIDs bitwise). With shards
missing it is written with status "partial" (the layers they had a share of are left out), the missing shards
are named, and the exit code is 3: run them into the same folder and merge again.
`;

export function mergePartFiles(specs: readonly string[], out: string): MergedShards {
  const merged = mergeShardParts(readParts(specs));
  writeReport(out, merged.report);
  return merged;
}

export async function runMerge(argv: string[], writeHtml: (file: string, report: MergedShards['report']) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { out: { type: 'string' }, html: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0].replace(/\.$/, '')}; see "infodiscard merge --help"`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(MERGE_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UserError('needs the parts: infodiscard merge <parts folder | shard-I-of-N.json …> --out report.json', 'merge');
  if (!v.out) throw new UserError('is required: the merged report file, e.g. --out report.json', '--out');
  if (positionals.length === 1 && isSeriesPartsFolder(positionals[0])) {
    if (v.html) throw new UserError('is for one report; a checkpoint series opens in VS Code (Open Report… on the series file)', '--html');
    const series = mergeSeries(positionals[0], v.out);
    process.stdout.write(`Series: ${path.resolve(v.out)}\n`);
    for (const c of series.checkpoints) {
      if (c.status === 'complete') continue;
      const what = c.status === 'missing' ? 'no shard has finished' : missingShardsText(c.shards, c.missingShards);
      process.stderr.write(`infodiscard: ${c.label}: ${c.status}: ${what}\n`);
    }
    return series.status === 'complete' ? 0 : 3;
  }
  const merged = mergePartFiles(positionals, v.out);
  if (v.html) writeHtml(v.html, merged.report);
  const { report } = merged;
  if (!v.quiet) {
    process.stderr.write(`infodiscard: merged ${merged.present.length} of ${merged.count} shards: ${report.layers.length} of ${report.requestedLayers.length} layers, ${report.images.length} images\n`);
  }
  process.stdout.write(`Report: ${path.resolve(v.out)}\n`);
  if (v.html) process.stdout.write(`HTML:   ${path.resolve(v.html)}\n`);
  if (report.status === 'partial') {
    process.stderr.write(`infodiscard: partial report: ${missingShardsText(merged.count, merged.missing)}\n`);
    return 3;
  }
  return 0;
}
