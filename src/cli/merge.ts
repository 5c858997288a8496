/**
 * `infodiscard merge <parts… | folder> --out report.json [--html report.html]`: the parts of a sharded analysis
 * (analyze --shard I/N) as the report one process would have written. Refuses parts of different analyses; with
 * shards missing, writes a 'partial' report naming them and exits 3.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UserError } from '../engine/errors';
import { writeReport } from '../engine/reportFile';
import { mergeShardParts, missingShardsText, PART_NAME, parsePart, type MergedShards, type ShardPart } from '../engine/shards';

export const MERGE_USAGE = `infodiscard merge — the parts of a sharded analysis (analyze … --shard I/N) as one report

Usage:
  infodiscard merge <parts folder | shard-I-of-N.json …> --out <report.json> [--html <report.html>]

The parts must come from one analysis (same model bytes, settings, layers and images); a mixture is refused.
With every shard present the report is the one a single process writes (maps and SIDs bitwise). With shards
missing it is written with status "partial" (the layers they had a share of are left out), the missing shards
are named, and the exit code is 3: run them into the same folder and merge again.
`;

/** The part files named on the command line: files as given, folders' shard-I-of-N.json files. */
export function partFiles(specs: readonly string[]): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    let st;
    try {
      st = statSync(spec);
    } catch {
      throw new UserError('no such file or folder; give the parts folder (--out of analyze --shard) or shard-I-of-N.json files', spec);
    }
    if (st.isDirectory()) {
      const names = readdirSync(spec).filter((n) => PART_NAME.test(n));
      if (names.length === 0) throw new UserError('folder has no shard parts (shard-I-of-N.json); run infodiscard analyze … --shard I/N --out <this folder>', spec);
      const index = (n: string) => Number(PART_NAME.exec(n)![1]);
      out.push(...names.sort((a, b) => index(a) - index(b) || a.localeCompare(b)).map((n) => path.join(spec, n)));
    } else {
      out.push(spec);
    }
  }
  return out;
}

export function readParts(specs: readonly string[]): { file: string; part: ShardPart }[] {
  return partFiles(specs).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError(`is not readable (${(e as Error).message.split('\n')[0]})`, file);
    }
    return { file, part: parsePart(text, file) };
  });
}

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
