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

export const MERGE_USAGE = `infodiscard merge — the parts of a sharded analysis (analyze … --shard I/N) as one report

Usage:
  infodiscard merge <parts folder | shard-I-of-N.json …> --out <report.json> [--html <report.html>]

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
