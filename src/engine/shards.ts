/**
 * Sharded analyses (`infodiscard analyze --shard I/N`, `infodiscard merge`): one analysis split into N shards that
 * any batch engine runs (a Slurm job array, a Kubernetes Indexed Job), each writing a part file, merged into the
 * report one process would have written. The jobs are the parallel runner's (src/worker/parallel.ts): a (layer,
 * image) pair, or a whole layer when RU trains its decoder once per layer. Seeds derive from a layer's place in the
 * model and an image's place in the list, never from the job or shard that ran it, so the merged maps and SIDs are
 * bitwise those of a one-process run. Pure functions, no file system: the CLI (src/cli/shard.ts, src/cli/merge.ts)
 * and the extension (Open Report… on a folder of parts) do the reading and writing.
 */
import { createHash } from 'node:crypto';
import { UserError } from './errors';
import type { LayerResult, Report, SkippedLayer } from './report';
import { mergeReports } from './reportMerge';

/** One unit of work: a layer's SID (and metrics) on some images (all when `images` is absent). */
export interface ShardJob {
  layer: string;
  /** The layer's place in the request (the merged report's order). */
  layerIndex: number;
  images?: number[];
  /** Relative cost: the layer's depth in the model (1-based) times the input's pixels, times its images. */
  cost: number;
}

export interface ShardSpec {
  /** 0-based, as Slurm's SLURM_ARRAY_TASK_ID and Kubernetes's JOB_COMPLETION_INDEX count. */
  index: number;
  count: number;
}

export const MAX_SHARDS = 10000;

/** "I/N" (0 <= I < N) from the command line. */
export function parseShard(text: string, option = '--shard'): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UserError(`expects I/N (shard I of N, counted from 0: 0/4 … 3/4), got "${text}"`, option);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new UserError(`N must be from 1 to ${MAX_SHARDS}, got "${text}"`, option);
  if (index >= count) throw new UserError(`I counts from 0, so it must be below N=${count}, got "${text}" (Slurm: --array=0-${count - 1})`, option);
  return { index, count };
}

/**
 * The analysis's jobs, in order: layer by layer (request order), each layer's images one by one, or the whole layer
 * when `splitImages` is false (RU). `depths[i]` is the place of layer i in the model (0-based); `pixels` H*W*C.
 */
export function shardJobs(layers: readonly string[], depths: readonly number[], imageCount: number, pixels: number, splitImages: boolean): ShardJob[] {
  if (depths.length !== layers.length) throw new Error('shardJobs: one depth per layer');
  return layers.flatMap((layer, layerIndex) => {
    const unit = (depths[layerIndex] + 1) * pixels;
    if (!splitImages || imageCount <= 1) return [{ layer, layerIndex, cost: unit * Math.max(1, imageCount) }];
    return Array.from({ length: imageCount }, (_, image) => ({ layer, layerIndex, images: [image], cost: unit }));
  });
}

/**
 * Which jobs each of `count` shards runs: longest-processing-time first (jobs by cost, highest first, ties in job
 * order), each to the shard with the least cost so far (ties: lowest index). A pure function of the costs, so every
 * shard computes the same assignment on its own; every job lands in exactly one shard. Each shard's jobs in job order.
 */
export function assignShards(jobs: readonly Pick<ShardJob, 'cost'>[], count: number): number[][] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`assignShards: ${count} shards`);
  const order = jobs.map((_, j) => j).sort((a, b) => jobs[b].cost - jobs[a].cost || a - b);
  const load = new Array<number>(count).fill(0);
  const out: number[][] = Array.from({ length: count }, () => []);
  for (const j of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    load[best] += jobs[j].cost;
    out[best].push(j);
  }
  for (const s of out) s.sort((a, b) => a - b);
  return out;
}

/** A short stable hash of any JSON value. */
export function hashJson(value: unknown, length = 16): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, length);
}

/** What makes two parts parts of the same analysis. */
export interface AnalysisKey {
  modelSha256: string;
  /** Hash of the tool version and report.settings as the engine resolved them (backend included). */
  settingsHash: string;
  layers: string[];
  images: string[];
  /** Hash of the job list (layers x images, split or not). */
  jobsHash: string;
}

/** The requested layers, in order, from the job list. */
export function layersOf(jobs: readonly ShardJob[]): string[] {
  const out: string[] = [];
  for (const j of jobs) out[j.layerIndex] = j.layer;
  return out;
}

export function analysisKey(report: Report, jobs: readonly ShardJob[]): AnalysisKey {
  return {
    modelSha256: report.model.sha256,
    settingsHash: hashJson([report.tool.version, report.settings]),
    layers: layersOf(jobs),
    images: report.images.map((im) => im.path),
    jobsHash: hashJson(jobs.map((j) => [j.layer, j.images ?? null])),
  };
}

/** A shard's part file: what it ran, and each job's layer result (a layer on the job's images). */
export interface ShardPart {
  format: 'infodiscard-shard';
  version: 1;
  shard: ShardSpec;
  /** Hash of the command's inputs (model bytes, images, options): a rerun with the same inputs finds its part done. */
  runKey: string;
  key: AnalysisKey;
  /** The analysis's whole job list (every shard holds the same). */
  jobs: ShardJob[];
  /** The indices into `jobs` this shard ran, each with its result. */
  results: { job: number; result?: LayerResult; skipped?: SkippedLayer }[];
  /** The report around the results (model, settings, images, run stats; layers empty). */
  report: Report;
  /** Wall seconds this shard took (its reruns included). */
  seconds: number;
}

export const PART_NAME = /^shard-(\d+)-of-(\d+)\.json$/;
export const partName = (s: ShardSpec): string => `shard-${s.index}-of-${s.count}.json`;

/** Checks the shape of a parsed part file; `file` names it in the error. */
export function parsePart(text: string, file: string): ShardPart {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UserError(`is not a readable shard part (${(e as Error).message.split('\n')[0]}); rerun its shard`, file);
  }
  const p = data as ShardPart;
  if (!p || typeof p !== 'object' || p.format !== 'infodiscard-shard' || !p.shard || !Array.isArray(p.results) || !Array.isArray(p.jobs) || !p.key || !p.report) {
    throw new UserError('is not an infodiscard shard part (written by infodiscard analyze --shard I/N)', file);
  }
  if (p.version > 1) throw new UserError(`was written by a newer infodiscard (shard part version ${p.version}); update infodiscard`, file);
  return p;
}

export interface MergedShards {
  report: Report;
  count: number;
  /** Shard indices with no part. */
  missing: number[];
  /** Shards that hold results, in order. */
  present: number[];
}

const short = (s: string) => s.slice(0, 12);
const listDiff = (a: readonly string[], b: readonly string[]): string => {
  const onlyA = a.filter((x) => !b.includes(x));
  const onlyB = b.filter((x) => !a.includes(x));
  if (onlyA.length || onlyB.length) return `${onlyA.length ? `has ${onlyA.slice(0, 3).join(', ')}${onlyA.length > 3 ? ', …' : ''}` : ''}${onlyA.length && onlyB.length ? ' and ' : ''}${onlyB.length ? `lacks ${onlyB.slice(0, 3).join(', ')}${onlyB.length > 3 ? ', …' : ''}` : ''}`;
  return 'lists them in another order';
};

/**
 * Checks that the parts belong to one analysis (the first one sets it) and raises one line naming the part that
 * does not and how it differs: a mixture of analyses is refused, never merged.
 */
export function checkParts(parts: readonly { file: string; part: ShardPart }[]): void {
  const [{ file: f0, part: p0 }] = parts;
  const refuse = (file: string, what: string) => new UserError(`${what} (${f0} is the first part); these parts belong to different analyses: keep each analysis's parts in its own folder`, file);
  for (const { file, part } of parts.slice(1)) {
    if (part.shard.count !== p0.shard.count) throw refuse(file, `is shard ${part.shard.index} of ${part.shard.count}, not of ${p0.shard.count}`);
    if (part.key.modelSha256 !== p0.key.modelSha256) throw refuse(file, `analysed another model (sha256 ${short(part.key.modelSha256)}…, not ${short(p0.key.modelSha256)}…)`);
    if (part.key.settingsHash !== p0.key.settingsHash) {
      const a = part.report.settings as unknown as Record<string, unknown>;
      const b = p0.report.settings as unknown as Record<string, unknown>;
      const differ = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
      throw refuse(file, `has other settings (${differ.length ? differ.map((k) => `${k} ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`).join(', ') : `tool ${part.report.tool.version} vs ${p0.report.tool.version}`})`);
    }
    if (JSON.stringify(part.key.layers) !== JSON.stringify(p0.key.layers)) throw refuse(file, `has another layer list (it ${listDiff(part.key.layers, p0.key.layers)})`);
    if (JSON.stringify(part.key.images) !== JSON.stringify(p0.key.images)) throw refuse(file, `has another image list (it ${listDiff(part.key.images, p0.key.images)})`);
    if (part.key.jobsHash !== p0.key.jobsHash) throw refuse(file, 'split the analysis into other jobs');
  }
}

/**
 * One report from the parts of a sharded analysis: every layer whose jobs are all present, merged exactly as the
 * parallel runner merges (src/engine/reportMerge.ts). Complete when every shard is there; otherwise status
 * 'partial' with `shards.missing`, the layers that some missing shard had a share of left out. Duplicate parts of
 * one shard (a rerun copied twice) are fine when they agree.
 */
export function mergeShardParts(parts: readonly { file: string; part: ShardPart }[]): MergedShards {
  if (parts.length === 0) throw new UserError('no shard parts (shard-I-of-N.json) to merge; run infodiscard analyze … --shard I/N first');
  checkParts(parts);
  const { count } = parts[0].part.shard;
  const jobs = parts[0].part.jobs;
  const byShard = new Map<number, ShardPart>();
  for (const { part } of parts) if (!byShard.has(part.shard.index)) byShard.set(part.shard.index, part);
  const done = new Set<number>();
  // A layer skipped in any job (delta_f^2 = 0, not differentiable …) is skipped, as a one-process run skips it whole.
  const skipped = new Map<string, SkippedLayer>();
  for (const part of byShard.values()) {
    for (const { job, skipped: s } of part.results) {
      done.add(job);
      if (s && !skipped.has(s.name)) skipped.set(s.name, s);
    }
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byShard.has(i));
  const present = [...byShard.keys()].sort((a, b) => a - b);
  const layers = parts[0].part.key.layers;
  const incomplete = new Set(layers.filter((name, i) => !skipped.has(name) && jobs.some((j, k) => j.layerIndex === i && !done.has(k))));
  const ordered = [...byShard.values()].sort((a, b) => a.shard.index - b.shard.index);
  // One partial report per job, so the parallel runner's merge joins each layer's images and recomputes its summaries.
  const reports: Report[] = [];
  const seen = new Set<number>();
  for (const part of ordered) {
    reports.push({ ...part.report, layers: [], skippedLayers: [] });
    for (const { job, result } of part.results) {
      if (seen.has(job) || !result || skipped.has(result.name)) continue;
      seen.add(job);
      reports.push({ ...part.report, layers: [result], skippedLayers: [] });
    }
  }
  if (skipped.size > 0) reports.push({ ...ordered[0].report, layers: [], skippedLayers: [...skipped.values()] });
  const seconds = Math.max(...ordered.map((p) => p.seconds));
  const report = mergeReports(reports, layers, { seconds, incomplete });
  // The statuses were each shard's; the merge decides: complete, or partial with what is missing.
  report.status = missing.length === 0 && incomplete.size === 0 ? 'complete' : 'partial';
  report.shards = { count, missing };
  delete report.error;
  return { report, count, missing, present };
}

/** One line naming the missing shards and how to run them. */
export function missingShardsText(count: number, missing: readonly number[]): string {
  if (missing.length === 0) return `all ${count} shards are present`;
  const list = missing.length > 20 ? `${missing.slice(0, 20).join(', ')}, … (${missing.length} in all)` : missing.join(', ');
  return `${missing.length} of ${count} shards missing: ${list}; run them (--shard I/${count}) and merge again`;
}
