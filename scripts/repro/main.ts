/**
 * `npm run repro`: analyse every model of the trained families (media/families/manifest.json) with the real CLI,
 * plus the third-party Keras MNIST checkpoints when ../shared/data/keras-mnist-dnn-repair exists, then draw one
 * chart per family with the report panel's chart code and write docs/reproduction.md (summarise.ts computes the
 * tables and verdicts).
 *
 *   node --import tsx scripts/repro/main.ts [--manifest media/families/manifest.json] [--families a,b] [--no-ru]
 *        [--ru-all] [--skip-layers a,b] [--reuse] [--no-charts] [--no-keras] [--keras-dir DIR] [--out out/repro]
 *        [--doc docs/reproduction.md] [--seeds N] [--seeds-ru]
 *
 * --seeds N (N > 1): every model also for seeds 2..N (the manifest's `runs`, media/families/seed<N>/), reports in
 * <out>/seed<N>/<family>/; the verdicts are then drawn across the runs (summarise.ts acrossVerdicts), the seed-1
 * tables kept as the secondary view, the charts show mean ± SD across runs. RU only for seed 1 unless --seeds-ru.
 *
 * Two CLI runs at a time, each with a worker per core. Families not selected with --families keep their reports
 * from earlier runs (if any) in the document. A model whose analysis fails is named in one line; the others go
 * on; the exit code is then 1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { familyInputs, manifestSeeds, seedFile } from '../../src/engine/families';
import { meanReport } from '../../src/engine/stats/seedGroups';
import { collectImagePaths } from '../../src/engine/imagePaths';
import type { Report } from '../../src/engine/report';
import type { ChartPayload } from './chart-page';
import { CHROMIUM, chromiumAvailable, renderCharts, renderDigits, type DigitImage } from './charts';
import { classifyDigits } from './digits';
import {
  aggregateReport, CLAIMS, defaultRuLayers, extractDiscussions, mergeRu, pickRuImages, FINDINGS, formatDuration, parseManifest, renderMarkdown, slug, trendChartData,
  type FamilyResult, type FamilySpec, type Manifest, type ModelResult, type ModelSpec, type RunInfo, type SeedRun,
} from './summarise';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SEED = 1;
/** CLI runs at once, each with --workers auto (a worker per core): the cores stay busy while a run waits for its slowest layer. */
const CONCURRENCY = 2;
/** Findings whose claims are about RU: their families get the (expensive) RU metric. */
const RU_FINDINGS = new Set(['depth', 'compression']);
// The logits (dense_2) are left out: not an intermediate layer, and the slowest by far (heavy-tailed feature change).
const KERAS_LAYERS = ['activation_1', 'activation_2', 'max_pooling2d_1', 'activation_3'];

const USAGE = `usage: node --import tsx scripts/repro/main.ts [options]
  --manifest FILE   families manifest (default media/families/manifest.json)
  --families a,b    run only these family ids (the others keep their earlier reports in the document)
  --no-ru           skip RU (reconstruction uncertainty): SID and concentration only, much faster
  --ru-all          RU for every depth/compression family (default: the first family of each, e.g. depth-resnet)
  --skip-layers a,b leave these layers out of every family (e.g. gap: the ResNets' slowest layer by far)
  --reuse           keep a model's report when it exists and was made with the same arguments and model file
  --no-charts       do not draw the PNG charts
  --no-keras        leave out the third-party Keras MNIST epoch series
  --keras-dir DIR   where the Keras checkpoints are (default ../shared/data/keras-mnist-dnn-repair)
  --out DIR         reports folder (default out/repro)
  --doc FILE        the document to write (default docs/reproduction.md; charts go to <its folder>/repro/)
  --seeds N         analyse each model's training seeds 1..N (default 1: seed 1 only) and draw the verdicts
                    across the runs (media/families/seed<N>, made by train_families.py --seed N)
  --seeds-ru        RU for the other seeds too (default: RU on seed 1 only; across-run RU needs this)`;

interface Options {
  manifest: string;
  families: string[] | null;
  ru: boolean;
  ruAll: boolean;
  skipLayers: string[];
  reuse: boolean;
  charts: boolean;
  kerasDir: string | null;
  out: string;
  doc: string;
  seeds: number;
  seedsRu: boolean;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      manifest: { type: 'string' },
      families: { type: 'string' },
      'no-ru': { type: 'boolean' },
      'ru-all': { type: 'boolean' },
      'skip-layers': { type: 'string' },
      reuse: { type: 'boolean' },
      'no-charts': { type: 'boolean' },
      'no-keras': { type: 'boolean' },
      'keras-dir': { type: 'string' },
      out: { type: 'string' },
      doc: { type: 'string' },
      seeds: { type: 'string' },
      'seeds-ru': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const abs = (p: string): string => path.resolve(ROOT, p);
  const seeds = values.seeds === undefined ? 1 : Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) {
    console.error(`repro: --seeds ${values.seeds}: give a whole number of training runs ≥ 1 (e.g. --seeds 3)`);
    process.exit(2);
  }
  return {
    seeds,
    seedsRu: !!values['seeds-ru'],
    manifest: abs(values.manifest ?? 'media/families/manifest.json'),
    families: values.families ? values.families.split(',').map((s) => s.trim()).filter(Boolean) : null,
    ru: !values['no-ru'],
    ruAll: !!values['ru-all'],
    skipLayers: values['skip-layers'] ? values['skip-layers'].split(',').map((x) => x.trim()).filter(Boolean) : [],
    reuse: !!values.reuse,
    charts: !values['no-charts'],
    kerasDir: values['no-keras'] ? null : abs(values['keras-dir'] ?? '../shared/data/keras-mnist-dnn-repair'),
    out: abs(values.out ?? 'out/repro'),
    doc: abs(values.doc ?? 'docs/reproduction.md'),
  };
}

const rel = (p: string): string => path.relative(ROOT, p) || '.';

/** A family ready to run: its spec plus resolved inputs. */
interface Planned {
  spec: FamilySpec;
  images: string;
  boxes: string | null;
  trainImages: string | null;
  /** Layers that get RU (empty: none). */
  ruLayers: string[];
  /** The images RU runs on (a subset of the analysis images). */
  ruImages: string[];
  note: string[];
  selected: boolean;
  files: Map<ModelSpec, string>;
  /** The training seed of this plan's model files. */
  seed: number;
  /** The manifest's own seed (its models' files): reports in <out>/<family>/ as without --seeds; others in <out>/seed<s>/<family>/. */
  primary: boolean;
}

/** One CLI run: the main analysis of a model (SID, concentration, every layer), or its RU run (a few layers). */
interface Job {
  family: Planned;
  model: ModelSpec;
  kind: 'main' | 'ru';
  file: string;
  report: string;
  argsFile: string;
  args: string[];
  layers: string[];
}

/** A family's analysis images, as the CLI reads them ([] when there are none: the CLI then names the problem). */
function imageFiles(images: string): string[] {
  try {
    return collectImagePaths([images]);
  } catch {
    return [];
  }
}

function plan(given: FamilySpec, manifest: Manifest | null, manifestDir: string, opts: Options, selected: boolean, ru: boolean, seed = manifest?.seed ?? 1): Planned {
  const skipped = given.layers.filter((l) => opts.skipLayers.includes(l));
  const spec: FamilySpec = skipped.length
    ? { ...given, layers: given.layers.filter((l) => !skipped.includes(l)), ...(given.focusLayer && skipped.includes(given.focusLayer) ? { focusLayer: undefined } : {}) }
    : given;
  const inputs = familyInputs(spec, manifest, manifestDir);
  const images = inputs.images;
  const boxes = existsSync(inputs.boxes) ? inputs.boxes : null;
  const trainImages = inputs.trainImages ?? path.join(ROOT, 'media/sample/train');
  const ruLayers = ru ? defaultRuLayers(spec) : [];
  const ruImages = ruLayers.length ? pickRuImages(imageFiles(images)) : [];
  const note = skipped.length ? [`Layers left out (\`--skip-layers\`): ${skipped.map((l) => `\`${l}\``).join(', ')}.`] : [];
  note.push(`Images: ${imageFiles(images).length} from \`${rel(images)}\`${boxes ? `, object boxes \`${rel(boxes)}\`` : ' (no boxes file: no concentration)'}.`);
  if (ruLayers.length) note.push(`RU (costly: a decoder per layer and model) at ${ruLayers.map((l) => `\`${l}\``).join(' and ')} only, on ${ruImages.length} of the images (${ruImages.map((f) => `\`${path.basename(f)}\``).join(', ')}): \`--decoder light\`, decoders trained on \`${rel(trainImages)}\` plus those images.`);
  else if (RU_FINDINGS.has(spec.finding)) note.push(opts.ru ? 'RU: not measured for this family (by default only the first family of each finding about RU gets it; `--ru-all` for all).' : 'RU: skipped (`--no-ru`).');
  const files = new Map(inputs.models.map((m) => [m.spec, m.file]));
  return { spec, images, boxes, trainImages: ruLayers.length ? trainImages : null, ruLayers, ruImages, note, selected, files, seed, primary: seed === (manifest?.seed ?? seed) };
}

function jobsOf(p: Planned, opts: Options): Job[] {
  const dir = p.primary ? path.join(opts.out, p.spec.id) : path.join(opts.out, `seed${p.seed}`, p.spec.id);
  return p.spec.models.flatMap((model) => {
    const file = p.files.get(model)!;
    // --force: the families' preprocessing is known by construction (the manifest's input range), and an untrained
    // checkpoint (epoch 0) gives near-uniform outputs by nature, which the CLI's pre-run check would refuse.
    const common = [...(p.spec.inputRange ? ['--input-range', p.spec.inputRange] : []), '--seed', String(SEED), '--force'];
    const make = (kind: Job['kind'], layers: string[], metrics: string[], extra: string[]): Job => {
      const report = path.join(dir, `${slug(model.name)}${kind === 'ru' ? '.ru' : ''}.report.json`);
      const images = kind === 'ru' ? p.ruImages.map(rel).join(',') : rel(p.images);
      const args = ['analyze', rel(file), '--images', images, '--layers', layers.join(','), '--metrics', metrics.join(','), ...extra, ...common,
        // --reuse is the repro's own (whole reports); the CLI's per-layer resume would hide the analysis time.
        '--workers', 'auto', '--no-resume', '--out', rel(report), '--quiet'];
      return { family: p, model, kind, file, report, argsFile: report.replace(/\.report\.json$/, '.args.json'), args, layers };
    };
    const jobs = [make('main', p.spec.layers, ['sid', ...(p.boxes ? ['concentration'] : [])], p.boxes ? ['--boxes', rel(p.boxes)] : [])];
    if (p.ruLayers.length && p.trainImages) jobs.push(make('ru', p.ruLayers, ['sid', 'ru'], ['--decoder', 'light', '--train-images', rel(p.trainImages)]));
    return jobs;
  });
}

/** What --reuse compares: the CLI arguments and the model file's size and time. */
function fingerprint(job: Job): string {
  let stat = { size: -1, mtimeMs: -1 };
  try {
    const s = statSync(job.file);
    stat = { size: s.size, mtimeMs: Math.round(s.mtimeMs) };
  } catch { /* missing: the run will say so */ }
  return JSON.stringify({ args: job.args, model: stat }, null, 1);
}

/** Two jobs analyse alike when only their --out and --layers differ (per-layer results do not depend on the others). */
function analysisKey(job: Job): string {
  const a = [...job.args];
  for (const flag of ['--out', '--layers']) {
    const i = a.indexOf(flag);
    if (i >= 0) a.splice(i, 2);
  }
  return JSON.stringify([path.resolve(job.file), a]);
}

function readReport(file: string): Report | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Report;
  } catch {
    return null;
  }
}

/** --reuse: the report is complete, holds every layer needed, and was made from the same model file with the same
 * arguments (its --layers may have been a superset). */
function canReuse(job: Job): boolean {
  const r = readReport(job.report);
  if (!r || r.status !== 'complete' || !job.layers.every((l) => r.layers.some((x) => x.name === l))) return false;
  try {
    const stored = JSON.parse(readFileSync(job.argsFile, 'utf8')) as { args: string[]; model: unknown };
    const now = JSON.parse(fingerprint(job)) as { args: string[]; model: unknown };
    // --layers may differ (a superset was analysed); --force changes no number.
    const strip = (args: string[]): string => JSON.stringify(args.filter((_, i) => args[i] !== '--layers' && args[i - 1] !== '--layers' && args[i] !== '--force'));
    return JSON.stringify(stored.model) === JSON.stringify(now.model) && strip(stored.args) === strip(now.args);
  } catch {
    return false;
  }
}

/** Run the CLI; resolves with the last line of stderr on failure. */
function runCli(args: string[]): Promise<{ ok: boolean; error: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-8192);
    });
    child.on('error', (e) => resolve({ ok: false, error: e.message }));
    child.on('close', (code, signal) => {
      const last = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
      resolve(code === 0 ? { ok: true, error: '' } : { ok: false, error: last || `exit ${code ?? signal}` });
    });
  });
}

/** The report without maps and images, restricted to the family's layers, with the RU run's RU merged in. */
function slimReport(report: Report, layers: string[], ru?: Report): Report {
  const ruOf = new Map((ru?.layers ?? []).map((l) => [l.name, l.ru]));
  return {
    ...report,
    images: [],
    requestedLayers: layers,
    layers: report.layers.filter((l) => layers.includes(l.name)).map((l) => ({ ...l, perImage: [], baselines: undefined, ...(ruOf.get(l.name) ? { ru: ruOf.get(l.name) } : {}) })),
  };
}

/** The Keras MNIST checkpoints as an extra epochs family, or why it is skipped. */
async function kerasFamily(dir: string, opts: Options, log: (s: string) => void): Promise<{ spec: FamilySpec; images: string; note: string[] } | { skipped: string }> {
  if (!existsSync(dir)) return { skipped: `The third-party Keras MNIST checkpoints were not found at \`${rel(dir)}\`: family skipped.` };
  const ckpts = readdirSync(dir)
    .map((f) => /^saved-model-(\d+)-([\d.]+)\.hdf5$/.exec(f))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ file: path.join(dir, m[0]), epoch: Number(m[1]), acc: Number(m[2]) }))
    .sort((a, b) => a.epoch - b.epoch);
  if (ckpts.length < 2) return { skipped: `Fewer than two \`saved-model-EE-ACC.hdf5\` checkpoints in \`${rel(dir)}\`: family skipped.` };
  const note: string[] = [
    `Third-party models (safednn-nasa/DNN-Repair, see \`${rel(path.join(dir, 'SOURCE.md'))}\`): one Keras training run of a small MNIST CNN (Conv2D 2 → Conv2D 4 → max-pool → Dense 128 → Dense 10), checkpoints after epochs ${ckpts.map((c) => c.epoch).join(', ')}. The accuracy column is the value in the file name (the checkpoint callback's monitored accuracy, two digits).`,
  ];
  // No MNIST data is installed and Fashion-MNIST clothing is out of distribution for digit classifiers (and
  // tells nothing about the input scaling): render MNIST-style digits, or skip the family.
  const why = 'no MNIST data is installed on this machine (`/usr/share/datasets` has Fashion-MNIST only) and Fashion-MNIST clothing is out of distribution for digit classifiers';
  if (!chromiumAvailable()) return { skipped: `Skipped: ${why}, and Chromium, which renders MNIST-style digits instead, is missing (${CHROMIUM}).` };
  const digitsDir = path.join(opts.out, '_digits');
  let digits: DigitImage[];
  let unit: number[];
  let bytes: number[];
  try {
    digits = await renderDigits(digitsDir);
    // The source does not say how pixels were scaled: try [0,1] and [0,255] and keep the one with which the
    // checkpoints classify the digits best.
    const count = (preds: number[][]): number[] => preds.map((p) => p.filter((v, k) => v === digits[k].digit).length);
    unit = count(await classifyDigits(ckpts.map((c) => c.file), digits, 'activation_4', 1));
    bytes = count(await classifyDigits(ckpts.map((c) => c.file), digits, 'activation_4', 255));
  } catch (e) {
    return { skipped: `Skipped: ${why}, and rendering MNIST-style digits failed: ${(e as Error).message.split('\n')[0]}` };
  }
  const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
  const inputRange = sum(bytes) > sum(unit) ? '0,255' : '0,1';
  const correct = inputRange === '0,255' ? bytes : unit;
  const images = digitsDir;
  note.push(`Images: ${why}, so the series is analysed on the ten digits 0–9 rendered from DejaVu Sans Bold the way MNIST was made (white on black, scaled into a 20×20 box, centred by centre of mass in 28×28; \`scripts/repro/charts.ts\`), with the ink's bounding box as object box. Input scaling: the source does not document it; with pixels in [0,1] the checkpoints classify ${unit.join(', ')} of the 10 digits correctly, with [0,255] ${bytes.join(', ')} (epochs ${ckpts.map((c) => c.epoch).join(', ')}), so the analysis uses \`--input-range ${inputRange}\`${sum(correct) >= 7 * ckpts.length ? ', and the digits are in distribution for these models' : ' (few digits are recognised: treat this series with caution)'}.`);
  log(`  rendered 10 digits; input range ${inputRange}: checkpoints classify ${correct.join(', ')} of 10 correctly`);
  const spec: FamilySpec = {
    id: 'epochs-keras-mnist',
    finding: 'epochs',
    title: 'Third-party Keras MNIST CNN over training epochs',
    claim: 'SID of the high layers first falls, then rises over the training epochs (information bottleneck)',
    xLabel: 'epoch',
    layers: KERAS_LAYERS,
    models: ckpts.map((c, i) => ({
      name: `epoch ${c.epoch}`,
      file: c.file,
      x: c.epoch,
      testAccuracy: c.acc,
      params: null,
      notes: `${correct[i]}/10 rendered digits right`,
    })),
    images,
    boxes: path.join(images, 'boxes.json'),
    inputRange,
  };
  return { spec, images, note };
}

function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}`;
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return `${sha}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const opts = options(process.argv.slice(2));
  const log = (s: string): void => console.log(s);
  const failures: string[] = [];
  if (!existsSync(CLI)) {
    console.error(`repro: ${rel(CLI)} not found: run npm run build (npm run repro does)`);
    return 2;
  }

  // 1. The families: the manifest's, then the Keras series.
  let manifest: Manifest | null = null;
  const manifestDir = path.dirname(opts.manifest);
  if (existsSync(opts.manifest)) {
    try {
      manifest = parseManifest(JSON.parse(readFileSync(opts.manifest, 'utf8')));
    } catch (e) {
      failures.push(`${rel(opts.manifest)}: ${(e as Error).message}`);
    }
  } else {
    failures.push(`${rel(opts.manifest)} not found: train the families first (scripts/families/train_families.py)`);
  }
  if (failures.length) console.error(`repro: ${failures[failures.length - 1]}`);
  const isSelected = (id: string): boolean => !opts.families || opts.families.includes(id);
  const planned: Planned[] = [];
  const skipped: FamilyResult[] = [];
  // RU: the families whose claims are about it; by default only the first of each finding (--ru-all: every one).
  const ruFindings = new Set<string>();
  // --seeds N: the manifest's seeds 1..N (the first N it lists); every family once per seed.
  const available = manifest ? manifestSeeds(manifest) : [1];
  const seeds = available.slice(0, opts.seeds);
  if (manifest && seeds.length < opts.seeds) {
    const missing = Array.from({ length: opts.seeds }, (_, i) => i + 1).filter((s) => !available.includes(s));
    console.error(`repro: --seeds ${opts.seeds}: ${rel(opts.manifest)} lists seed${available.length === 1 ? '' : 's'} ${available.join(', ')} only; train the others first: ${missing.map((s) => `nice -n 19 /usr/bin/python3 scripts/families/train_families.py --seed ${s}`).join(' && ')}`);
    return 2;
  }
  const manifestSeed = manifest?.seed ?? 1;
  for (const spec of manifest?.families ?? []) {
    const ru = opts.ru && RU_FINDINGS.has(spec.finding) && (opts.ruAll || !ruFindings.has(spec.finding));
    if (ru) ruFindings.add(spec.finding);
    for (const seed of seeds) {
      if (seed === manifestSeed) {
        planned.push(plan(spec, manifest, manifestDir, opts, isSelected(spec.id), ru, seed));
        continue;
      }
      const models = spec.models.flatMap((m) => {
        const file = seedFile(m, seed, manifestSeed);
        if (!file) failures.push(`${spec.id}/${m.name}: no seed ${seed} file in ${rel(opts.manifest)} (train_families.py --seed ${seed})`);
        // The seed's own accuracy and parameter count (the run's), not seed 1's.
        const run = m.runs?.find((r) => r.seed === seed);
        const own = run ? { testAccuracy: run.testAccuracy ?? null, testMSE: run.testMSE ?? null, params: run.params ?? m.params } : {};
        return file ? [{ ...m, ...own, file, seed }] : [];
      });
      if (models.length) planned.push(plan({ ...spec, models }, manifest, manifestDir, opts, isSelected(spec.id), ru && opts.seedsRu, seed));
    }
  }
  if (opts.kerasDir) {
    log('Keras MNIST checkpoints: preparing images…');
    const k = await kerasFamily(opts.kerasDir, opts, log);
    if ('skipped' in k && isSelected('epochs-keras-mnist')) {
      log(`  ${k.skipped}`);
      skipped.push({ spec: { id: 'epochs-keras-mnist', finding: 'epochs', title: 'Third-party Keras MNIST CNN over training epochs', claim: '', xLabel: 'epoch', layers: [], models: [] }, models: [], chart: null, note: k.skipped, skipped: true, seconds: 0 });
    } else if (!('skipped' in k)) {
      const p = plan(k.spec, null, ROOT, opts, isSelected(k.spec.id), false);
      p.note = [...k.note, ...p.note.filter((n) => !n.startsWith('Images:'))];
      planned.push(p);
    }
  }
  if (opts.families) {
    const known = new Set([...planned.map((p) => p.spec.id), 'epochs-keras-mnist']);
    for (const id of opts.families) if (!known.has(id)) failures.push(`--families: no family "${id}" (known: ${[...known].join(', ')})`);
  }

  // 2. Run the CLI per model, two runs at a time (each with a worker per core, so the machine stays busy while one
  // run waits for its slowest layer): the main runs first, largest model files first, then the RU runs. A model
  // analysed alike in this run (the same file in two families) is copied from that report when it holds every
  // layer needed (waiting for it if it is still running).
  const jobs = planned.flatMap((p) => jobsOf(p, opts));
  const toRun = jobs.filter((j) => j.family.selected);
  const reports = new Map<Job, Report>();
  const outcome = new Map<Job, { error?: string; reused: boolean }>();
  const inflight = new Map<Job, Promise<void>>();
  log(`${toRun.length} analyses of ${new Set(toRun.map((j) => j.file)).size} model files in ${new Set(planned.filter((p) => p.selected).map((p) => p.spec.id)).size} families${seeds.length > 1 ? ` × seeds ${seeds.join(', ')}` : ''}${opts.ru ? '' : ' (no RU)'}, ${CONCURRENCY} at a time; reports in ${rel(opts.out)}/`);
  let started = 0;
  const runJob = async (job: Job): Promise<void> => {
    const name = `${job.family.primary ? '' : `seed${job.family.seed}/`}${job.family.spec.id}/${job.model.name}${job.kind === 'ru' ? ' (RU)' : ''}`;
    let error: string | undefined;
    let reused = false;
    if (!job.family.selected) {
      reused = true;
    } else {
      const reusable = opts.reuse && canReuse(job);
      const twinJob = reusable ? undefined : [...inflight.keys()].find((d) => d !== job && analysisKey(d) === analysisKey(job) && job.layers.every((l) => d.layers.includes(l)));
      if (twinJob) await inflight.get(twinJob);
      const tag = `[${++started}/${toRun.length}] ${name}`;
      const twin = twinJob && !outcome.get(twinJob)?.error && reports.get(twinJob)?.status === 'complete' ? twinJob : undefined;
      if (reusable) {
        reused = true;
        log(`${tag}: reused`);
      } else if (twin) {
        mkdirSync(path.dirname(job.report), { recursive: true });
        copyFileSync(twin.report, job.report);
        writeFileSync(job.argsFile, fingerprint(job));
        log(`${tag}: same analysis as ${twin.family.spec.id}/${twin.model.name}, copied`);
      } else if (!existsSync(job.file)) {
        error = `model file not found: ${rel(job.file)}`;
      } else {
        mkdirSync(path.dirname(job.report), { recursive: true });
        rmSync(job.argsFile, { force: true });
        rmSync(job.report, { force: true });
        const t = Date.now();
        log(`${tag} …`);
        const r = await runCli(job.args);
        log(`  ${name}: ${r.ok ? 'done' : 'FAILED'} in ${formatDuration((Date.now() - t) / 1000)}`);
        if (r.ok) writeFileSync(job.argsFile, fingerprint(job));
        else error = r.error;
      }
    }
    const report = existsSync(job.report) ? readReport(job.report) : null;
    if (!report && !error && job.family.selected) error = `no report at ${rel(job.report)}`;
    if (error) {
      console.error(`repro: ${name}: ${error}`);
      failures.push(`${name}: ${error}`);
    }
    if (report) reports.set(job, report);
    if (report || job.family.selected) outcome.set(job, { error, reused });
  };
  const size = (j: Job): number => {
    try {
      return statSync(j.file).size;
    } catch {
      return 0;
    }
  };
  const queue = [
    ...jobs.filter((j) => j.kind === 'main').map((j, k) => ({ j, k, s: size(j) })).sort((a, b) => b.s - a.s || a.k - b.k).map((x) => x.j),
    ...jobs.filter((j) => j.kind === 'ru'),
  ];
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const p = runJob(job);
      inflight.set(job, p);
      await p;
    }
  }));
  const results = new Map<ModelSpec, ModelResult>();
  const slim = new Map<ModelSpec, Report>();
  for (const p of planned) {
    for (const model of p.spec.models) {
      const main = jobs.find((j) => j.family === p && j.model === model && j.kind === 'main')!;
      const ru = jobs.find((j) => j.family === p && j.model === model && j.kind === 'ru');
      if (!outcome.has(main) && !(ru && outcome.has(ru))) continue;
      const mainReport = reports.get(main);
      const ruReport = ru ? reports.get(ru) : undefined;
      const errors = [main, ru].flatMap((j) => (j && outcome.get(j)?.error ? [`${j.kind === 'ru' ? 'RU: ' : ''}${outcome.get(j)!.error}`] : []));
      let layers = mainReport ? aggregateReport(mainReport, p.spec.layers) : {};
      if (ruReport) layers = mergeRu(layers, aggregateReport(ruReport, p.spec.layers));
      const mainFailed = !!outcome.get(main)?.error;
      results.set(model, {
        spec: model,
        layers,
        // A failed RU run leaves the model's SID usable: only the main run's failure takes it out of the verdicts.
        ...(mainFailed ? { error: errors.join('; ') } : errors.length ? { warning: errors.join('; ') } : {}),
        ...(mainReport || ruReport ? { seconds: (mainReport?.seconds ?? 0) + (ruReport?.seconds ?? 0) } : {}),
        ...(outcome.get(main)?.reused ? { reused: true } : {}),
      });
      if (mainReport) slim.set(model, slimReport(mainReport, p.spec.layers, ruReport));
    }
  }

  // 3. Family results (families not selected: only when they have earlier reports).
  const families: FamilyResult[] = [];
  const modelsOf = (p: Planned): ModelResult[] => p.spec.models.filter((m) => results.has(m)).map((m) => results.get(m)!);
  for (const p of planned) {
    if (!p.primary) continue;
    const models = modelsOf(p);
    if (!p.selected && models.length === 0) continue;
    const others = planned.filter((q) => q !== p && q.spec.id === p.spec.id && q.seed !== p.seed);
    const across: SeedRun[] | undefined = others.length ? [{ seed: p.seed, models }, ...others.map((q) => ({ seed: q.seed, models: modelsOf(q) }))].filter((r) => r.models.length) : undefined;
    const seconds = [p, ...others].reduce((a, q) => a + modelsOf(q).reduce((b, m) => b + (m.seconds ?? 0), 0), 0);
    const note = across ? [...p.note, `Seeds: ${across.map((r) => r.seed).join(', ')} (reports of seed s > 1 in \`${rel(opts.out)}/seed<s>/\`)${p.ruLayers.length && !opts.seedsRu ? '; RU on seed 1 only (`--seeds-ru` for all)' : ''}.`] : p.note;
    families.push({ spec: p.spec, models, chart: null, note: note.join(' '), seconds, ...(across && across.length > 1 ? { across } : {}) });
  }
  families.push(...skipped);
  families.sort((a, b) => FINDINGS.indexOf(a.spec.finding) - FINDINGS.indexOf(b.spec.finding));

  // 4. Charts.
  const chartsDir = path.join(path.dirname(opts.doc), 'repro');
  let chartsNote: string | undefined;
  const chartJobs: { file: string; payload: ChartPayload; family: FamilyResult }[] = [];
  for (const f of families) {
    if (f.skipped) continue;
    const p = planned.find((x) => x.spec === f.spec)!;
    const plansOf = f.across ? planned.filter((q) => q.spec.id === p.spec.id && f.across!.some((r) => r.seed === q.seed)) : [p];
    // Across runs: each model's reports of every seed averaged (mean over runs, std = SD across runs).
    const series = p.spec.models.filter((m) => slim.has(m) && !results.get(m)?.error).map((m) => {
      const reps = plansOf.flatMap((q) => q.spec.models.filter((x) => x.name === m.name && slim.has(x) && !results.get(x)?.error).map((x) => slim.get(x)!));
      return reps.length > 1 ? { label: `${m.name} (${reps.length} runs)`, report: meanReport(reps) as Report } : { label: m.name, report: slim.get(m)! };
    });
    if (!series.length) continue;
    const claim = CLAIMS[f.spec.finding];
    chartJobs.push({
      file: path.join(chartsDir, `${f.spec.id}.png`),
      family: f,
      payload: {
        title: f.spec.title,
        subtitle: `Paper: "${claim.quote}" (${claim.figure.replace(/^Sec\. 4, "[^"]*", /, '')})`,
        series,
        concentration: series.some((s) => s.report.layers.some((l) => typeof l.concentration?.mean === 'number')),
        trend: trendChartData(f.spec, f.models, f.across),
        spread: f.across ? `mean over ${f.across.length} training runs, error bars ± 1 SD across runs` : undefined,
      },
    });
  }
  if (!opts.charts) {
    chartsNote = 'Charts not drawn (--no-charts).';
  } else if (!chromiumAvailable()) {
    chartsNote = `Charts skipped: ${CHROMIUM} not found (install Debian's chromium package to draw them).`;
    log(chartsNote);
  } else if (chartJobs.length) {
    log(`Drawing ${chartJobs.length} charts…`);
    try {
      await renderCharts(chartJobs);
      for (const c of chartJobs) c.family.chart = path.relative(path.dirname(opts.doc), c.file).split(path.sep).join('/');
    } catch (e) {
      chartsNote = `Charts failed: ${(e as Error).message.split('\n')[0]}`;
      failures.push(chartsNote);
      console.error(`repro: ${chartsNote}`);
    }
  }

  // 5. The document.
  const first = [...reports.values()][0];
  const s = first?.settings;
  const totalSeconds = (Date.now() - t0) / 1000;
  const analysisSeconds = families.reduce((a, f) => a + f.seconds, 0);
  const reusedCount = [...outcome.values()].filter((r) => r.reused).length;
  const run: RunInfo = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: `npm run repro${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    totalSeconds,
    analysisSeconds,
    reused: reusedCount,
    machine: machine(),
    node: process.versions.node,
    backend: s?.backend ?? 'unknown',
    commit: commit(),
    ru: opts.ru,
    chartsNote,
    settings: s ? [
      `SID: α = ${s.alpha}, τ = ${s.tau}, K = ${s.samples} noise samples per step, at most ${s.maxSteps} steps, learning rate ${s.learningRate}, σ ≤ ${s.sigmaMax}, ${s.sigmaGrid ? `σ on a ${s.sigmaGrid}×${s.sigmaGrid} grid` : 'one σ per pixel'}, seed ${s.seed} (the paper's α and τ)`,
      `RU: ${opts.ru ? `\`--decoder light\` (3 residual blocks, 16 channels, ≤ 20 epochs; the paper's decoder has 6 blocks), in a second CLI run per model, two such runs at a time; because it costs about 3 CPU-minutes per layer and model, only at the focus layer, on 4 of the images, and only for the first family of each finding whose claim is about RU (${[...RU_FINDINGS].join(', ')})${opts.ruAll ? ' — here every such family (--ru-all)' : ' (`--ru-all`: every such family)'}` : 'skipped (--no-ru)'}`,
      'Concentration: from each image\'s object box (the family\'s boxes.json).',
      `Parallelism: ${CONCURRENCY} CLI runs at a time, each with \`--workers auto\` (a worker per core, one layer per worker); the per-image seconds in the reports are therefore wall times on a shared CPU.`,
    ] : ['No report was produced.'],
    manifest: rel(opts.manifest),
    dataset: manifest?.dataset,
    script: manifest?.script,
    failures,
  };
  const previous = existsSync(opts.doc) ? readFileSync(opts.doc, 'utf8') : '';
  mkdirSync(path.dirname(opts.doc), { recursive: true });
  writeFileSync(opts.doc, renderMarkdown(run, families, extractDiscussions(previous)));
  log(`Wrote ${rel(opts.doc)}${chartJobs.length && !chartsNote ? ` and ${chartJobs.length} charts in ${rel(chartsDir)}/` : ''}`);
  log(`Total time: ${formatDuration(totalSeconds)}${reusedCount ? ` (${reusedCount} reports reused)` : ''}`);
  if (failures.length) {
    console.error(`repro: ${failures.length} problem${failures.length === 1 ? '' : 's'}:`);
    for (const f of failures) console.error(`  ${f}`);
    return 1;
  }
  return 0;
}

main().then((code) => {
  process.exitCode = code;
}, (e: unknown) => {
  console.error(`repro: ${(e as Error)?.stack ?? e}`);
  process.exitCode = 1;
});
