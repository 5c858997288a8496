/**
 * `infodiscard analyze … --shard I/N --out <folder>`: shard I's share of the analysis's jobs (src/engine/shards.ts),
 * each job an analysis of one layer on some images in this process, written to <folder>/.jobs-<run key>/job-J.json
 * as it finishes (atomically), then the shard's part <folder>/shard-I-of-N.json (atomically) and its job files
 * removed. A rerun with the same inputs finds its part and exits at once, or reuses the jobs a killed run finished.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { analyze } from '../engine/analyze';
import { selectBackend } from '../engine/backend';
import { UserError } from '../engine/errors';
import { collectImages } from '../engine/imagePaths';
import { loadModel } from '../engine/loaders';
import { modelSha256 } from '../engine/modelHash';
import type { Report } from '../engine/report';
import { readReport } from '../engine/reportFile';
import { resolveLayers } from '../engine/resolveLayers';
import { peakRssMB } from '../engine/runStats';
import { analysisKey, assignShards, layersOf, hashJson, partName, parsePart, shardJobs, type ShardJob, type ShardPart, type ShardSpec } from '../engine/shards';
import { VERSION } from '../engine/version';
import { writeJsonAtomic } from '../engine/shardFiles';
import { analyzeParams, type AnalyzeArgs } from './args';

/** What decides the shard's results: the model's bytes, the images (path, size, mtime), every option, N. */
async function runKeyOf(args: AnalyzeArgs, images: string[], count: number): Promise<string> {
  let model: string;
  try {
    model = await modelSha256(args.model);
  } catch (e) {
    throw new UserError(`cannot be read (${(e as Error).message.split('\n')[0]})`, args.model);
  }
  const { reportPath: _out, ...params } = analyzeParams(args);
  const files = images.map((f) => {
    const st = statSync(f);
    return [f, st.size, Math.round(st.mtimeMs)];
  });
  return hashJson([VERSION, model, params, files, count]);
}

/** A job's finished report: its layer's result, or the layer skipped (δ_f² = 0, not differentiable …). */
function readJob(file: string, layer: string): Report | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const r = readReport(file);
    return r.status === 'complete' && (r.layers.length === 1 || !!r.skippedLayers?.some((s) => s.name === layer)) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The analysis's jobs, planned from the model's layers (their depth) and the image count, as every shard plans them. */
async function planShardJobs(args: AnalyzeArgs, imageCount: number): Promise<ShardJob[]> {
  await selectBackend(args.settings.backend);
  const model = await loadModel(args.model, { weights: args.weights });
  try {
    // The layers a one-process run resolves (default: the recommended set).
    const layers = resolveLayers(model, analyzeParams(args).layers);
    const depths = layers.map((name) => model.layers.findIndex((l) => l.name === name));
    const height = model.input.height ?? args.inputSize?.[0] ?? 1;
    const width = model.input.width ?? args.inputSize?.[1] ?? 1;
    const splitImages = !(args.settings.metrics ?? []).includes('ru');
    return shardJobs(layers, depths, imageCount, height * width * model.input.channels, splitImages);
  } finally {
    model.dispose();
  }
}

/** `args.settings` must hold the resolved preprocessing (resolveAndCheck), as for a one-process run. */
export async function runShard(args: AnalyzeArgs, shard: ShardSpec, signal: AbortSignal): Promise<string> {
  const t0 = performance.now();
  const say = (line: string) => {
    if (!args.quiet) process.stderr.write(`shard ${shard.index}/${shard.count}: ${line}\n`);
  };
  const dir = path.resolve(args.out);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError('is a file; with --shard, --out names the folder for the part files', args.out);
  const partFile = path.join(dir, partName(shard));
  const images = collectImages(args.images).paths;
  const runKey = await runKeyOf(args, images, shard.count);
  if (existsSync(partFile)) {
    const part = parsePart(readFileSync(partFile, 'utf8'), partFile);
    if (part.runKey === runKey) {
      say(`already complete (${part.results.length} jobs), nothing to do`);
      return partFile;
    }
    throw new UserError(`holds shard ${shard.index}/${shard.count} of another analysis (other model, images or options); remove it or give another --out folder`, partFile);
  }

  const jobs = await planShardJobs(args, images.length);
  if (shard.count > jobs.length) {
    throw new UserError(`N=${shard.count} is more than this analysis's ${jobs.length} jobs (layers x images${(args.settings.metrics ?? []).includes('ru') ? ', one per layer with RU' : ''}); use at most --shard I/${jobs.length}`, '--shard');
  }
  const mine = assignShards(jobs, shard.count)[shard.index];
  const jobsDir = path.join(dir, `.jobs-${runKey}`);
  mkdirSync(jobsDir, { recursive: true });
  const jobFile = (j: number) => path.join(jobsDir, `job-${j}.json`);
  const params = { ...analyzeParams(args), images, decoderCacheDir: args.decoderCacheDir ?? path.join(dir, 'decoders') };
  const warned = new Set<string>();
  const results: ShardPart['results'] = [];
  let header: Report | undefined;
  let seconds = 0;
  let reused = 0;
  const processes = new Map<number, number>();
  for (const [k, j] of mine.entries()) {
    const job = jobs[j];
    const what = `job ${j} (${job.layer}${job.images ? `, image ${job.images.join(',')}` : ''}), ${k + 1} of ${mine.length}`;
    let report = readJob(jobFile(j), job.layer);
    if (report) {
      reused++;
      say(`${what}: finished by an earlier run`);
    } else {
      report = await analyze({
        ...params,
        layers: [job.layer],
        analysedLayers: layersOf(jobs),
        // The job files are this command's own resume: a finished job is read back above, never recomputed.
        resume: false,
        ...(job.images ? { imageIndices: job.images } : {}),
        reportPath: jobFile(j),
        signal,
        onEvent: (e) => {
          if (e.type === 'warning' && !warned.has(e.message)) {
            warned.add(e.message);
            process.stderr.write(`infodiscard: warning: ${e.message}\n`);
          }
        },
      });
      say(`${what}: done in ${report.seconds.toFixed(1)} s`);
    }
    header ??= report;
    seconds += report.seconds;
    for (const p of report.run?.processes ?? []) processes.set(p.pid, Math.max(processes.get(p.pid) ?? 0, p.peakRssMB));
    const skipped = report.skippedLayers?.find((x) => x.name === job.layer);
    results.push({ job: j, ...(report.layers[0] ? { result: report.layers[0] } : {}), ...(skipped ? { skipped } : {}) });
  }
  processes.set(process.pid, Math.max(processes.get(process.pid) ?? 0, peakRssMB()));
  const report: Report = {
    ...header!,
    status: 'complete',
    layers: [],
    skippedLayers: [],
    requestedLayers: layersOf(jobs),
    seconds,
    run: { processes: [...processes].map(([pid, peakRssMB]) => ({ pid, peakRssMB })) },
  };
  const part: ShardPart = {
    format: 'infodiscard-shard',
    version: 1,
    shard,
    runKey,
    key: analysisKey(report, jobs),
    jobs,
    results,
    report,
    seconds,
  };
  writeJsonAtomic(partFile, part);
  for (const j of mine) rmSync(jobFile(j), { force: true });
  try {
    rmdirSync(jobsDir);
  } catch {
    // Other shards' jobs are still there.
  }
  say(`${mine.length} jobs (${reused} from an earlier run) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return partFile;
}
