/**
 * Compare Checkpoints, the pure parts: epochs from checkpoint names, which files of a folder are the run's
 * checkpoints and in what order (src/extension/checkpoints.ts, no vscode), and the reports turned into one line per
 * layer against epoch (webview/report/epochData.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isUserError } from '../src/engine/errors';
import type { Report } from '../src/engine/report';
import {
  epochsOf, findModels, integerGroups, listCheckpoints, MODEL_EXTENSIONS, naturalCompare, nameTemplate, orderCheckpoints, parseEpoch, stem,
} from '../src/extension/checkpoints';
import { commonLayers, epochChartData } from '../webview/report/epochData';
import { sampleReport, sampleReportV2 } from './fixtures/sample-report';
import { tempDir } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');

test('parseEpoch: named numbers, Keras ModelCheckpoint names, fractional metrics skipped', () => {
  const cases: [string, number | undefined][] = [
    ['epoch-03.onnx', 3],
    ['epoch3.h5', 3],
    ['Epoch_007.keras', 7],
    ['epochs-12.h5', 12],
    ['ep_12.keras', 12],
    ['ep12.h5', 12],
    ['ckpt-5', 5],
    ['ckpt_5', 5],
    ['checkpoint_7.h5', 7],
    ['model.epoch10.keras', 10],
    ['model.epoch10', 10],
    ['step_400.onnx', 400],
    ['run2-epoch-04.h5', 4],
    ['saved-model-05-0.98.hdf5', 5],
    ['saved-model-20-0.99.hdf5', 20],
    ['weights.07-0.43.hdf5', 7],
    ['weights.02-1e-05.hdf5', 2],
    ['lr1e-3-05.h5', 5],
    ['model_0.5_07.h5', 7],
    ['deep_5.h5', 5],
    ['final.h5', undefined],
    ['model.json', undefined],
    ['best-model.onnx', undefined],
  ];
  for (const [name, epoch] of cases) assert.equal(parseEpoch(name), epoch, name);
  // "ep" and "step" only as words: "deep" and "keep" are not epochs, "steps" is.
  assert.equal(parseEpoch('keep3-deep5-ep_2.h5'), 2);
  assert.deepEqual(integerGroups('saved-model-05-0.98.hdf5'), [5]);
  assert.deepEqual(integerGroups('resnet50_07.h5'), [50, 7]);
  assert.equal(stem('a.b.hdf5'), 'a.b');
  assert.equal(stem('ckpt_5'), 'ckpt_5');
  assert.equal(nameTemplate('saved-model-05-0.98.hdf5'), 'saved-model-#-#');
  assert.equal(nameTemplate('Epoch-9.onnx'), nameTemplate('epoch-10.h5'));
});

test('epochsOf: the integer that differs between a run\'s names, named numbers first', () => {
  assert.deepEqual(epochsOf(['resnet50_03.h5', 'resnet50_07.h5', 'resnet50_11.h5']), [3, 7, 11]);
  assert.deepEqual(epochsOf(['v2-run1-001.h5', 'v2-run1-002.h5']), [1, 2]);
  assert.deepEqual(epochsOf(['net2_epoch3.h5', 'net2_epoch9.h5']), [3, 9]);
  // Same integers everywhere: the first; no integers: none.
  assert.deepEqual(epochsOf(['model-5.h5', 'model-5.onnx']), [5, 5]);
  assert.deepEqual(epochsOf(['a.h5', 'b.h5']), [undefined, undefined]);
  // Different counts of integers: each name's first.
  assert.deepEqual(epochsOf(['mnist1.h5', 'mnist2_fc3.h5']), [1, 2]);
});

test('naturalCompare: epoch-9 before epoch-10, case-insensitive, total', () => {
  const names = ['epoch-10.h5', 'Epoch-2.h5', 'epoch-9.h5', 'epoch-1.h5', 'epoch-2.h5'];
  assert.deepEqual([...names].sort(naturalCompare), ['epoch-1.h5', 'Epoch-2.h5', 'epoch-2.h5', 'epoch-9.h5', 'epoch-10.h5']);
});

const entries = (...names: string[]) => names.map((name) => ({ path: `/ckpt/${name}`, name }));

test('orderCheckpoints: epoch order, duplicates kept in name order, odd names left out with a reason', () => {
  const o = orderCheckpoints(entries('epoch-10.h5', 'epoch-2.h5', 'best.h5', 'epoch-02.onnx', 'epoch-1.h5'));
  assert.equal(o.axis, 'epoch');
  assert.deepEqual(o.checkpoints.map((c) => [c.name, c.epoch]), [['epoch-1.h5', 1], ['epoch-2.h5', 2], ['epoch-02.onnx', 2], ['epoch-10.h5', 10]]);
  assert.deepEqual(o.duplicates, [{ epoch: 2, names: ['epoch-2.h5', 'epoch-02.onnx'] }]);
  assert.deepEqual(o.leftOut, [{ name: 'best.h5', reason: 'not named like the other checkpoints (epoch-#)' }]);
  assert.deepEqual(o.checkpoints.map((c) => c.label), ['epoch-1', 'epoch-2', 'epoch-02', 'epoch-10']);

  // Two names that differ only in the extension keep it in their labels.
  const same = orderCheckpoints(entries('ckpt-3.h5', 'ckpt-3.onnx', 'ckpt-4.h5'));
  assert.deepEqual(same.checkpoints.map((c) => c.label), ['ckpt-3.h5', 'ckpt-3.onnx', 'ckpt-4']);

  // Subfolders are named by the folder.
  const dirs = orderCheckpoints([{ path: '/r/ckpt_10/model.json', name: 'ckpt_10' }, { path: '/r/ckpt_5/model.json', name: 'ckpt_5' }]);
  assert.deepEqual(dirs.checkpoints.map((c) => [c.path, c.epoch, c.label]), [['/r/ckpt_5/model.json', 5, 'ckpt_5'], ['/r/ckpt_10/model.json', 10, 'ckpt_10']]);
});

test('orderCheckpoints: no epoch in any name gives name order 1..n; mixed names chart those with an epoch', () => {
  const none = orderCheckpoints(entries('fashion-cnn-early', 'fashion-cnn', 'baseline.onnx'));
  assert.equal(none.axis, 'order');
  assert.deepEqual(none.checkpoints.map((c) => [c.name, c.epoch]), [['baseline.onnx', 1], ['fashion-cnn', 2], ['fashion-cnn-early', 3]]);
  assert.deepEqual(none.leftOut, []);
  assert.deepEqual(none.duplicates, []);

  // Distinct shapes, some with an epoch: those are charted, the rest left out.
  const mixed = orderCheckpoints(entries('first-epoch-1.h5', 'final.h5', 'later_ep4.h5'));
  assert.equal(mixed.axis, 'epoch');
  assert.deepEqual(mixed.checkpoints.map((c) => c.epoch), [1, 4]);
  assert.deepEqual(mixed.leftOut.map((l) => l.name), ['final.h5']);
  assert.match(mixed.leftOut[0].reason, /no epoch number/);

  // One name with an epoch among others without: name order for all.
  const one = orderCheckpoints(entries('alpha.h5', 'beta-3.h5', 'gamma.h5'));
  assert.equal(one.axis, 'order');
  assert.deepEqual(one.checkpoints.map((c) => c.name), ['alpha.h5', 'beta-3.h5', 'gamma.h5']);
});

test('listCheckpoints: the Keras run in the shared data folder (mnist1.h5 and mnist2_fc.h5 are other models)', { skip: !require('node:fs').existsSync('/work/shared/data/keras-mnist-dnn-repair') }, async () => {
  const l = await listCheckpoints('/work/shared/data/keras-mnist-dnn-repair');
  assert.equal(l.axis, 'epoch');
  assert.deepEqual(l.checkpoints.map((c) => c.epoch), [1, 5, 10, 15, 20]);
  assert.deepEqual(l.checkpoints.map((c) => c.label), ['saved-model-01-0.96', 'saved-model-05-0.98', 'saved-model-10-0.98', 'saved-model-15-0.98', 'saved-model-20-0.99']);
  assert.deepEqual(l.leftOut.map((x) => x.name), ['mnist1.h5', 'mnist2_fc.h5']);
  assert.deepEqual(l.skipped, []);
});

test('listCheckpoints: model files and model.json subfolders; JSON that is not a model ignored; unreadable files skipped', async () => {
  const dir = tempDir('infodiscard-ckpt-list-');
  try {
    const tfjs = JSON.stringify({ modelTopology: {}, weightsManifest: [] });
    for (const e of [3, 1, 12]) {
      mkdirSync(path.join(dir, `epoch-${String(e).padStart(2, '0')}`));
      writeFileSync(path.join(dir, `epoch-${String(e).padStart(2, '0')}`, 'model.json'), tfjs);
    }
    writeFileSync(path.join(dir, 'epoch-07.onnx'), 'not really onnx');
    writeFileSync(path.join(dir, 'epoch-05.json'), tfjs);
    writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ loss: [1, 0.5] }));
    writeFileSync(path.join(dir, 'notes.txt'), 'epoch 9');
    writeFileSync(path.join(dir, 'epoch-09.h5'), '');
    symlinkSync(path.join(dir, 'gone.h5'), path.join(dir, 'epoch-11.h5'));
    mkdirSync(path.join(dir, 'logs'));
    mkdirSync(path.join(dir, '.infodiscard'));
    writeFileSync(path.join(dir, '.infodiscard', 'model.json'), tfjs);
    // A symlinked subfolder counts like a real one.
    symlinkSync(path.join(dir, 'epoch-03'), path.join(dir, 'epoch-20'));

    const l = await listCheckpoints(dir);
    assert.equal(l.folder, dir);
    assert.equal(l.axis, 'epoch');
    assert.deepEqual(l.checkpoints.map((c) => [c.name, c.epoch]), [
      ['epoch-01', 1], ['epoch-03', 3], ['epoch-05.json', 5], ['epoch-07.onnx', 7], ['epoch-12', 12], ['epoch-20', 20],
    ]);
    assert.equal(l.checkpoints[0].path, path.join(dir, 'epoch-01', 'model.json'));
    assert.equal(l.checkpoints[2].path, path.join(dir, 'epoch-05.json'));
    assert.deepEqual(l.skipped.map((s) => [path.basename(s.path), s.reason]), [['epoch-09.h5', 'is empty'], ['epoch-11.h5', 'cannot be read (a broken link)']]);
    assert.deepEqual(l.leftOut, []);

    if (process.getuid?.() !== 0) {
      chmodSync(path.join(dir, 'epoch-07.onnx'), 0o000);
      const { skipped } = await findModels(dir);
      assert.ok(skipped.some((s) => s.path.endsWith('epoch-07.onnx') && s.reason === 'cannot be read (permission denied)'));
      chmodSync(path.join(dir, 'epoch-07.onnx'), 0o644);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listCheckpoints: fewer than two models is one line naming the folder', async () => {
  const dir = tempDir('infodiscard-ckpt-few-');
  try {
    const fail = async (): Promise<string> => {
      try {
        await listCheckpoints(dir);
      } catch (e) {
        assert.ok(isUserError(e));
        return (e as Error).message;
      }
      assert.fail('expected an error');
    };
    assert.match(await fail(), new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: holds no model files; Compare Checkpoints needs two or more: [^\\n]+$`));
    writeFileSync(path.join(dir, 'epoch-1.h5'), 'x');
    writeFileSync(path.join(dir, 'epoch-2.h5'), '');
    assert.match(await fail(), /: holds one model file only \(epoch-1\.h5\), 1 unreadable; Compare Checkpoints needs two or more/);
    // The sample model folder is one model, not a folder of checkpoints; the sample folder holds two.
    await assert.rejects(listCheckpoints(path.join(ROOT, 'media', 'sample', 'fashion-cnn')), /fashion-cnn: holds one model file only \(model\.json\)/);
    const sample = await listCheckpoints(path.join(ROOT, 'media', 'sample'));
    assert.equal(sample.axis, 'order');
    assert.deepEqual(sample.checkpoints.map((c) => c.label), ['fashion-cnn', 'fashion-cnn-early']);
    await assert.rejects(listCheckpoints(path.join(dir, 'nope')), /nope: cannot be read; check that the folder exists/);
    await assert.rejects(listCheckpoints(path.join(dir, 'epoch-1.h5')), /epoch-1\.h5: is not a folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MODEL_EXTENSIONS: the formats the engine loads', () => {
  assert.deepEqual(MODEL_EXTENSIONS, ['json', 'h5', 'hdf5', 'keras', 'onnx']);
  assert.ok(os.tmpdir());
});

/** A report of the sample's 3 layers with SID means shifted by `shift` (and RU when v2). */
function checkpointReport(shift: number, options: { v2?: boolean; finishedLayers?: number; status?: Report['status'] } = {}): Report {
  const r = options.v2 ? sampleReportV2({ finishedLayers: options.finishedLayers, status: options.status }) : sampleReport({ finishedLayers: options.finishedLayers, status: options.status });
  r.layers = r.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + shift } }));
  return r;
}

test('epochChartData: one SID line per layer in epoch order; points fill in as layers finish', () => {
  const layers = sampleReport().requestedLayers;
  const data = epochChartData([
    { epoch: 10, label: 'epoch-10', report: checkpointReport(0.3) },
    { epoch: 1, label: 'epoch-01', report: checkpointReport(0.1) },
    { epoch: 5, label: 'epoch-05', report: checkpointReport(0.2, { finishedLayers: 1, status: 'running' }) },
  ]);
  assert.deepEqual(data.epochs, [1, 5, 10]);
  assert.deepEqual(data.layers, layers);
  assert.deepEqual(data.omitted, []);
  assert.equal(data.withRu, false);
  assert.deepEqual(data.lines.map((l) => [l.layer, l.metric, l.points.map((p) => p.x)]), [
    [layers[0], 'sid', [1, 5, 10]],
    [layers[1], 'sid', [1, 10]],
    [layers[2], 'sid', [1, 10]],
  ]);
  const base = sampleReport().layers[0].sid;
  const first = data.lines[0].points;
  assert.deepEqual(first.map((p) => p.checkpoint), ['epoch-01', 'epoch-05', 'epoch-10']);
  first.forEach((p, i) => assert.ok(Math.abs(p.y - (base.mean + [0.1, 0.2, 0.3][i])) < 1e-12));
  assert.equal(first[0].std, base.std);
});

test('epochChartData: RU lines where measured (poor decoders flagged); duplicate epochs stable; only common layers', () => {
  const withRu = epochChartData([
    { epoch: 2, label: 'b', report: checkpointReport(0, { v2: true }) },
    { epoch: 2, label: 'a', report: checkpointReport(0.5) },
    { epoch: 1, label: 'c', report: checkpointReport(0, { v2: true }) },
  ]);
  assert.equal(withRu.withRu, true);
  assert.deepEqual(withRu.epochs, [1, 2, 2]);
  const names = sampleReportV2().requestedLayers;
  assert.deepEqual(withRu.lines.map((l) => `${l.layer}/${l.metric}`), names.flatMap((n) => [`${n}/sid`, `${n}/ru`]));
  assert.deepEqual(withRu.lines[0].points.map((p) => p.checkpoint), ['c', 'b', 'a'], 'equal epochs keep their order');
  assert.deepEqual(withRu.lines[1].points.map((p) => p.checkpoint), ['c', 'b'], 'RU only where measured');
  const lastRu = withRu.lines[withRu.lines.length - 1];
  assert.ok(lastRu.points.every((p) => /decoder reconstructs poorly/.test(p.warning ?? '')), 'the sample\'s last decoder is poor');
  assert.ok(withRu.lines[1].points.every((p) => p.warning === undefined));

  // A checkpoint with a renamed layer: that layer and the renamed one are left out.
  const renamed = checkpointReport(0.2);
  renamed.layers[2] = { ...renamed.layers[2], name: 'dense_new' };
  renamed.requestedLayers = renamed.layers.map((l) => l.name);
  const common = epochChartData([
    { epoch: 1, label: 'x', report: checkpointReport(0) },
    { epoch: 2, label: 'y', report: renamed },
  ]);
  assert.deepEqual(common.layers, sampleReport().requestedLayers.slice(0, 2));
  assert.deepEqual(common.omitted, [sampleReport().requestedLayers[2], 'dense_new']);
  assert.equal(common.lines.length, 2);
  assert.deepEqual(commonLayers([]), { layers: [], omitted: [] });
  assert.deepEqual(epochChartData([]), { layers: [], omitted: [], lines: [], withRu: false, epochs: [] });
});
