/** Sharded analyses: the job assignment, the CLI's parts (--shard I/N), their merge, refusals, partial, restart. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Report } from '../src/engine/report';
import { assignShards, mergeShardParts, parsePart, parseShard, shardJobs, type ShardPart } from '../src/engine/shards';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { CLI, expectUserError } from './helpers/cli';

test('assignShards: every job in exactly one shard for N = 1..8, the same every time, balanced by cost', () => {
  const layers = ['conv1', 'block2', 'block3', 'pool', 'fc'];
  const depths = [0, 4, 9, 10, 12];
  for (const images of [1, 3, 7]) {
    const jobs = shardJobs(layers, depths, images, 28 * 28, true);
    assert.equal(jobs.length, images === 1 ? layers.length : layers.length * images);
    for (let n = 1; n <= 8; n++) {
      const shards = assignShards(jobs, n);
      assert.equal(shards.length, n);
      const all = shards.flat().sort((a, b) => a - b);
      assert.deepEqual(all, jobs.map((_, j) => j), `N=${n}, ${images} images: every job exactly once`);
      assert.deepEqual(assignShards(jobs, n), shards, 'stable');
      for (const s of shards) assert.deepEqual(s, [...s].sort((a, b) => a - b), 'each shard in job order');
      // Longest-processing-time first: no shard exceeds the mean load by more than the largest job.
      const loads = shards.map((s) => s.reduce((a, j) => a + jobs[j].cost, 0));
      const mean = loads.reduce((a, b) => a + b, 0) / n;
      const biggest = Math.max(...jobs.map((j) => j.cost));
      assert.ok(Math.max(...loads) <= mean + biggest, `N=${n}: loads ${loads.join(', ')}`);
    }
  }
  // Pinned: a change of the assignment breaks the parts of runs in flight, so it must be deliberate.
  const pinned = shardJobs(['a', 'b', 'c'], [0, 1, 2], 2, 4, true);
  assert.deepEqual(pinned.map((j) => j.cost), [4, 4, 8, 8, 12, 12], 'cost = (depth + 1) x pixels');
  assert.deepEqual(assignShards(pinned, 3), [[0, 4], [1, 5], [2, 3]]);
  assert.deepEqual(assignShards(pinned, 2), [[0, 2, 4], [1, 3, 5]]);
  // RU keeps a layer whole (its decoder trains once per layer): one job per layer, costed for all its images.
  assert.deepEqual(shardJobs(['a', 'b'], [0, 3], 5, 10, false).map((j) => [j.layer, j.images, j.cost]), [['a', undefined, 50], ['b', undefined, 200]]);
});

test('parseShard: I/N counted from 0, with one-line errors', () => {
  assert.deepEqual(parseShard('3/8'), { index: 3, count: 8 });
  assert.deepEqual(parseShard('0/1'), { index: 0, count: 1 });
  assert.throws(() => parseShard('8/8'), /I counts from 0, so it must be below N=8.*--array=0-7/);
  assert.throws(() => parseShard('1/0'), /N must be from 1/);
  assert.throws(() => parseShard('2'), /expects I\/N/);
});

const dir = tempDir('infodiscard-shards-');
const fast = ['--max-steps', '30', '--samples', '8', '--backend', 'wasm', '--seed', '3', '--quiet'];
let model = '';
let images = '';
let one: Report;

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const shardArgs = (out: string, i: number, n: number, extra: string[] = []) => ['analyze', model, '--images', images, '--out', out, '--shard', `${i}/${n}`, ...fast, ...extra];
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

/** The merged report equals the one-process run: maps, SIDs and every per-image number bitwise (but the timings). */
function assertSameAnalysis(merged: Report, expected: Report): void {
  // Timings (any "seconds") and whether a decoder came from a cache are the only differences allowed.
  const strip = (r: Report) => JSON.parse(JSON.stringify(r.layers, (k, v) => (k === 'seconds' ? 0 : k === 'cached' ? false : v))) as unknown;
  assert.equal(merged.status, 'complete');
  assert.deepEqual(merged.requestedLayers, expected.requestedLayers);
  assert.deepEqual(merged.images, expected.images);
  assert.deepEqual(merged.settings, expected.settings);
  assert.deepEqual(merged.model, expected.model);
  assert.deepEqual(strip(merged), strip(expected));
  assert.deepEqual(merged.skippedLayers, expected.skippedLayers);
}

before(async () => {
  model = await saveLayersModel(reluConvNet(7, 1), path.join(dir, 'model'));
  images = path.join(dir, 'images');
  mkdirSync(images, { recursive: true });
  writeGrayPng(path.join(images, 'a.png'), 7, 7, (x, y) => (x + y) / 14);
  writeGrayPng(path.join(images, 'b.png'), 7, 7, (x, y) => ((x * y) % 7) / 6);
  writeGrayPng(path.join(images, 'c.png'), 7, 7, (x, y) => (x > 3 ? 0.9 : 0.1) + y / 80);
  const out = path.join(dir, 'one.json');
  const r = cli(['analyze', model, '--images', images, '--out', out, '--workers', '1', ...fast]);
  assert.equal(r.code, 0, r.stderr);
  one = readJson<Report>(out);
});

test('3 shards merge into the one-process report; a missing shard gives a partial report that a later run completes', () => {
  const parts = path.join(dir, 'parts3');
  for (const i of [0, 1]) assert.equal(cli(shardArgs(parts, i, 3)).code, 0);
  const partial = path.join(dir, 'partial.json');
  const m = cli(['merge', parts, '--out', partial]);
  assert.equal(m.code, 3, m.stderr);
  assert.match(m.stderr, /partial report: 1 of 3 shards missing: 2; run them \(--shard I\/3\)/);
  const p = readJson<Report>(partial);
  assert.equal(p.status, 'partial');
  assert.deepEqual(p.shards, { count: 3, missing: [2] });
  assert.ok(p.layers.length < 3, 'the layers shard 2 had a share of are left out');
  const noTimes = (l: Report['layers'][number]) => ({ ...l, perImage: l.perImage.map((q) => ({ ...q, seconds: 0 })) });
  for (const l of p.layers) assert.deepEqual(noTimes(l), noTimes(one.layers.find((o) => o.name === l.name)!), `${l.name}: complete layers are whole`);

  const r = cli(shardArgs(parts, 2, 3));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Part: .*shard-2-of-3\.json/);
  const out = path.join(dir, 'merged3.json');
  const html = path.join(dir, 'merged3.html');
  const done = cli(['merge', parts, '--out', out, '--html', html]);
  assert.equal(done.code, 0, done.stderr);
  assertSameAnalysis(readJson<Report>(out), one);
  assert.deepEqual(readJson<Report>(out).shards, { count: 3, missing: [] });
  assert.ok(existsSync(html));
  assert.deepEqual(readdirSync(parts).sort(), ['shard-0-of-3.json', 'shard-1-of-3.json', 'shard-2-of-3.json'], 'the job files are removed');
  // Listing the part files works as well as the folder.
  assert.equal(cli(['merge', ...readdirSync(parts).map((f) => path.join(parts, f)), '--out', path.join(dir, 'files.json')]).code, 0);

  // A finished shard exits at once; a shard of another analysis in the same folder is refused.
  const again = spawnSync(process.execPath, [CLI, ...shardArgs(parts, 0, 3).filter((a) => a !== '--quiet')], { encoding: 'utf8' });
  assert.equal(again.status, 0);
  assert.match(again.stderr, /shard 0\/3: already complete/);
  expectUserError([...shardArgs(parts, 1, 3), '--alpha', '2'], /shard-1-of-3\.json: holds shard 1\/3 of another analysis/);
});

test('merge refuses a mixture of analyses with one line naming the part and the difference', () => {
  const parts = path.join(dir, 'parts2');
  for (const i of [0, 1]) assert.equal(cli(shardArgs(parts, i, 2)).code, 0);
  const other = path.join(dir, 'parts2-seed');
  assert.equal(cli(shardArgs(other, 1, 2, ['--seed', '5'])).code, 0);
  const a = path.join(parts, 'shard-0-of-2.json');
  const b = path.join(other, 'shard-1-of-2.json');
  expectUserError(['merge', a, b, '--out', path.join(dir, 'mix.json')], /shard-1-of-2\.json: has other settings \(seed 5 vs 3\).*belong to different analyses/);
  assert.ok(!existsSync(path.join(dir, 'mix.json')), 'nothing written');

  // The other checks, on parts edited in memory.
  const base = { file: a, part: parsePart(readFileSync(a, 'utf8'), a) };
  const second = parsePart(readFileSync(path.join(parts, 'shard-1-of-2.json'), 'utf8'), 'b');
  const edit = (f: (p: ShardPart) => void) => {
    const p = structuredClone(second);
    f(p);
    return [base, { file: 'b.json', part: p }];
  };
  assert.throws(() => mergeShardParts(edit((p) => (p.key.modelSha256 = 'f'.repeat(64)))), /b\.json: analysed another model \(sha256 ffffffffffff…/);
  assert.throws(() => mergeShardParts(edit((p) => (p.shard = { index: 1, count: 3 }))), /b\.json: is shard 1 of 3, not of 2/);
  assert.throws(() => mergeShardParts(edit((p) => (p.key.images = [...p.key.images.slice(0, 2), 'd.png']))), /b\.json: has another image list \(it has d\.png and lacks .*c\.png\)/);
  const lastLayer = second.key.layers.at(-1)!;
  assert.throws(() => mergeShardParts(edit((p) => (p.key.layers = p.key.layers.slice(0, -1)))), new RegExp(`b\\.json: has another layer list \\(it lacks ${lastLayer}\\)`));
  assert.throws(() => mergeShardParts(edit((p) => (p.key.jobsHash = 'x'))), /b\.json: split the analysis into other jobs/);
  // The same shard twice (a copy of a rerun) is fine.
  assert.equal(mergeShardParts([base, base, { file: 'b', part: second }]).report.status, 'complete');

  expectUserError(['merge', path.join(dir, 'images'), '--out', path.join(dir, 'x.json')], /images: folder has no shard parts/);
  expectUserError(['merge', model, '--out', path.join(dir, 'x.json')], /model\.json: is not an infodiscard shard part/);
  expectUserError(['merge', parts], /--out: is required/);
  expectUserError(shardArgs(path.join(dir, 'r.json'), 0, 2), /--out: with --shard, --out names the folder/);
  const jobCount = second.jobs.length;
  assert.equal(jobCount, second.key.layers.length * 3, 'one job per (layer, image)');
  expectUserError(shardArgs(path.join(dir, 'p'), 0, jobCount + 1), new RegExp(`--shard: N=${jobCount + 1} is more than this analysis's ${jobCount} jobs`));
});

test('a killed shard rerun continues from its finished jobs and gives the same part', async () => {
  const parts = path.join(dir, 'parts-kill');
  const args = shardArgs(parts, 0, 1).filter((a) => a !== '--quiet');
  const child = spawn(process.execPath, [CLI, ...args]);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if ((stderr.match(/: done in/g) ?? []).length >= 2 && !child.killed) child.kill('SIGKILL');
  });
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(!existsSync(path.join(parts, 'shard-0-of-1.json')), `killed before the part was written:\n${stderr}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const reused = (r.stderr.match(/finished by an earlier run/g) ?? []).length;
  assert.ok(reused >= 2, `the rerun reused the finished jobs (${reused}):\n${r.stderr}`);
  const out = path.join(dir, 'killed.json');
  assert.equal(cli(['merge', parts, '--out', out]).code, 0);
  assertSameAnalysis(readJson<Report>(out), one);
});

test('compare-checkpoints --shard: every checkpoint sharded, merged into a series equal to the unsharded run', async () => {
  const ck = path.join(dir, 'checkpoints');
  for (const e of [1, 4]) await saveLayersModel(reluConvNet(7, e), path.join(ck, `ckpt_${e}`));
  const opts = ['--images', images, '--layers', 'conv1,conv3', ...fast];
  const whole = path.join(dir, 'ck-whole');
  const r = cli(['compare-checkpoints', ck, '--out', whole, ...opts]);
  assert.equal(r.code, 0, r.stderr);
  const parts = path.join(dir, 'ck-parts');
  assert.equal(cli(['compare-checkpoints', ck, '--out', parts, '--shard', '0/2', ...opts]).code, 0);
  const seriesFile = path.join(dir, 'ck-merged', 'series.json');
  const partial = cli(['merge', parts, '--out', seriesFile]);
  assert.equal(partial.code, 3);
  assert.match(partial.stderr, /ckpt_1: partial: 1 of 2 shards missing: 1/);
  assert.equal(cli(['compare-checkpoints', ck, '--out', parts, '--shard', '1/2', ...opts]).code, 0);
  assert.equal(cli(['merge', parts, '--out', seriesFile]).code, 0);
  const series = readJson<{ format: string; axis: string; status: string; checkpoints: { label: string; epoch: number; report: string }[] }>(seriesFile);
  assert.equal(series.format, 'infodiscard-series');
  assert.equal(series.status, 'complete');
  assert.deepEqual(series.checkpoints.map((c) => [c.label, c.epoch]), [['ckpt_1', 1], ['ckpt_4', 4]]);
  const wholeSeries = readJson<typeof series>(path.join(whole, 'series.json'));
  for (const [i, c] of series.checkpoints.entries()) {
    const expected = readJson<Report>(path.join(whole, wholeSeries.checkpoints[i].report));
    assertSameAnalysis(readJson<Report>(path.join(path.dirname(seriesFile), c.report)), expected);
  }
  assert.notDeepEqual(readJson<Report>(path.join(whole, 'ckpt_1.json')).layers[0].sid, readJson<Report>(path.join(whole, 'ckpt_4.json')).layers[0].sid, 'two different checkpoints');
});

test('BatchNorm folding follows the whole layer list, so a shard computes a layer as the whole run does', async () => {
  // conv_a -> bn_a -> relu -> conv_b -> bn_b: the whole run analyses conv_a, so bn_a is not folded into it; a job
  // of bn_a alone must not fold it either (folding changes the last bits).
  const input = tfl.input({ shape: [7, 7, 1] });
  const init = (seed: number) => ({ gammaInitializer: tfl.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed }), betaInitializer: tfl.initializers.randomNormal({ stddev: 0.3, seed: seed + 1 }), movingMeanInitializer: tfl.initializers.randomNormal({ stddev: 0.3, seed: seed + 2 }), movingVarianceInitializer: tfl.initializers.randomUniform({ minval: 0.3, maxval: 2, seed: seed + 3 }) });
  let y = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }), name: 'conv_a' }).apply(input) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: 'bn_a', epsilon: 1e-3, ...init(10) }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.reLU({ name: 'relu_a' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }), name: 'conv_b' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: 'bn_b', epsilon: 1e-3, ...init(20) }).apply(y) as tfl.SymbolicTensor;
  const bnModel = await saveLayersModel(tfl.model({ inputs: input, outputs: y }), path.join(dir, 'bn-model'));
  const opts = ['--images', images, '--layers', 'conv_a,bn_a,bn_b', ...fast];
  const whole = path.join(dir, 'bn-one.json');
  assert.equal(cli(['analyze', bnModel, '--out', whole, '--workers', '1', ...opts]).code, 0);
  const parts = path.join(dir, 'bn-parts');
  for (const i of [0, 1]) assert.equal(cli(['analyze', bnModel, '--out', parts, '--shard', `${i}/2`, ...opts]).code, 0);
  const merged = path.join(dir, 'bn-merged.json');
  assert.equal(cli(['merge', parts, '--out', merged]).code, 0);
  assertSameAnalysis(readJson<Report>(merged), readJson<Report>(whole));
});

test('RU (a layer per job, its decoder trained once), concentration and baselines merge bitwise too', () => {
  const opts = ['--images', images, '--layers', 'conv1,conv3', '--metrics', 'ru,concentration,baselines', '--box', '1,1,4,4', '--decoder', 'light', '--decoder-epochs', '2', ...fast];
  const whole = path.join(dir, 'ru-one.json');
  assert.equal(cli(['analyze', model, '--out', whole, '--workers', '1', ...opts]).code, 0);
  const parts = path.join(dir, 'ru-parts');
  for (const i of [0, 1]) assert.equal(cli(['analyze', model, '--out', parts, '--shard', `${i}/2`, ...opts]).code, 0);
  expectUserError(['analyze', model, '--out', parts, '--shard', '0/3', ...opts], /N=3 is more than this analysis's 2 jobs \(layers x images, one per layer with RU\)/);
  const merged = path.join(dir, 'ru-merged.json');
  assert.equal(cli(['merge', parts, '--out', merged]).code, 0);
  const a = readJson<Report>(merged);
  const b = readJson<Report>(whole);
  assert.ok(b.layers.every((l) => Number.isFinite(l.ru!.mean) && l.concentration && l.baselines), 'every metric measured');
  assertSameAnalysis(a, b);
});

test('a layer the analysis skips (its output does not move: delta_f^2 = 0) is skipped in the merged report too', async () => {
  const input = tfl.input({ shape: [7, 7, 1] });
  let y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }), name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', kernelInitializer: 'zeros', biasInitializer: 'zeros', name: 'dead' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }), name: 'conv3' }).apply(y) as tfl.SymbolicTensor;
  const deadModel = await saveLayersModel(tfl.model({ inputs: input, outputs: y }), path.join(dir, 'dead-model'));
  const opts = ['--images', images, '--layers', 'conv1,dead', ...fast];
  const whole = path.join(dir, 'dead-one.json');
  const one = cli(['analyze', deadModel, '--out', whole, '--workers', '1', ...opts]);
  assert.equal(one.code, 0, one.stderr);
  const expected = readJson<Report>(whole);
  assert.deepEqual(expected.skippedLayers?.map((l) => l.name), ['dead'], 'the one-process run skips it');
  const parts = path.join(dir, 'dead-parts');
  for (const i of [0, 1, 2]) assert.equal(cli(['analyze', deadModel, '--out', parts, '--shard', `${i}/3`, ...opts]).code, 0);
  const merged = path.join(dir, 'dead-merged.json');
  const m = cli(['merge', parts, '--out', merged]);
  assert.equal(m.code, 0, m.stderr);
  assertSameAnalysis(readJson<Report>(merged), expected);
});

after(() => rmSync(dir, { recursive: true, force: true }));
