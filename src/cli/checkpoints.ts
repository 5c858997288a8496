/**
 * `infodiscard compare-checkpoints <folder> --images … [--shard I/N] [--out <parts folder>] [analyze options]`: the
 * checkpoints of one training run (found and ordered as Compare Checkpoints in Folder… does, src/extension/
 * checkpoints.ts) analysed with the same settings and images. Each checkpoint is a sharded analysis of its own
 * (<out>/<checkpoint>/shard-I-of-N.json), so N array tasks each take 1/N of every checkpoint; <out>/series-parts.json
 * lists them. Without --shard it runs the one shard 0/1 and merges at once; with it, `infodiscard merge <out>
 * --out series.json` merges every checkpoint and writes the series file that Open Report… shows as the epoch chart.
 */
import path from 'node:path';
import { UserError } from '../engine/errors';
import { checkpointDirs, mergeSeries, SERIES_PARTS, type SeriesParts } from '../engine/series';
import { writeJsonAtomic } from '../engine/shardFiles';
import { listCheckpoints } from '../extension/checkpoints';
import { parseCli, type AnalyzeArgs } from './args';
import { abortOnInterrupt } from './interrupt';
import { runShard } from './shard';
import { resolveAndCheck } from './preprocessing';

export const CHECKPOINTS_USAGE = `infodiscard compare-checkpoints — SID per layer against epoch, over the checkpoints of one training run

Usage:
  infodiscard compare-checkpoints <folder> --images <files|folder> [--shard I/N] [--out <parts folder>] [options]

The folder holds the checkpoints (epoch-03.onnx, saved-model-05-0.98.hdf5, ckpt_5/model.json …), ordered by the
epoch in their names as the extension's Compare Checkpoints does. Each checkpoint is analysed with the same options
(those of "infodiscard analyze"), into <out>/<checkpoint>/ (default out: infodiscard-checkpoints).
  --shard I/N    only shard I of N of every checkpoint (a Slurm array task or a Kubernetes pod; docs/cluster.md);
                 then "infodiscard merge <out> --out series.json" writes each checkpoint's report and the series
  without it     every checkpoint in this process, then the merge into <out>/series.json
Open the series file with "Open Report…" in VS Code: the epoch chart of Compare Checkpoints.
`;

export async function runCompareCheckpoints(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    process.stdout.write(CHECKPOINTS_USAGE);
    return 0;
  }
  const outGiven = argv.some((a) => a === '--out' || a.startsWith('--out='));
  const parsed = parseCli(['analyze', ...argv]);
  if (parsed.command !== 'analyze') throw new UserError('needs a folder of checkpoints: infodiscard compare-checkpoints <folder> --images …', 'compare-checkpoints');
  const args: AnalyzeArgs = parsed;
  if (args.html) throw new UserError('is for one report; open the series in VS Code (Open Report…), or give --html to "infodiscard merge" per checkpoint', '--html');
  const out = path.resolve(outGiven ? args.out : 'infodiscard-checkpoints');
  if (/\.json$/i.test(out)) throw new UserError(`names the folder for the checkpoints' parts (e.g. --out parts), got "${args.out}"`, '--out');
  const listing = await listCheckpoints(args.model);
  const dirs = checkpointDirs(listing.checkpoints.map((c) => c.label));
  const series: SeriesParts = {
    format: 'infodiscard-series-parts',
    version: 1,
    folder: path.resolve(listing.folder),
    axis: listing.axis,
    checkpoints: listing.checkpoints.map((c, i) => ({ label: c.label, epoch: c.epoch, model: path.resolve(c.path), dir: dirs[i] })),
  };
  // Every shard writes the same listing (atomically), so the merge finds it whichever shard ran first.
  writeJsonAtomic(path.join(out, SERIES_PARTS), series);
  const shard = args.shard ?? { index: 0, count: 1 };
  const controller = abortOnInterrupt('Cancelling (the finished jobs are kept; rerun to continue)');
  for (const [i, cp] of series.checkpoints.entries()) {
    if (!args.quiet) process.stderr.write(`checkpoint ${i + 1}/${series.checkpoints.length}: ${cp.label}\n`);
    const own: AnalyzeArgs = { ...args, model: cp.model, out: path.join(out, cp.dir) };
    // Each checkpoint's preprocessing resolved and checked as "analyze" does it (flags, stored profile, the file).
    const { settings } = await resolveAndCheck(own, (line) => process.stdout.write(`${line}\n`));
    await runShard({ ...own, settings }, shard, controller.signal);
  }
  if (args.shard) {
    process.stdout.write(`Parts: ${out}\n`);
    return 0;
  }
  const file = path.join(out, 'series.json');
  const merged = mergeSeries(out, file);
  process.stdout.write(`Series: ${file}\n`);
  for (const c of merged.checkpoints) if (c.status !== 'complete') process.stderr.write(`infodiscard: ${c.label}: ${c.status}\n`);
  return merged.status === 'complete' ? 0 : 3;
}
