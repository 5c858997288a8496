/**
 * Comparing models in the panel's layer charts: models whose layer names line up share one axis of names; models
 * of different architectures are each placed at their layers' relative depth (0..1), and no line joins a layer of
 * one model to a name only another model has. Pure (the chart specs, no canvas).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Report } from '../src/engine/report';
import { alignLayers, relativeDepths } from '../webview/report/data';
import { baselinesSpec, concentrationSpec, sidRuSpec, type ChartSeries } from '../webview/report/chart';
import type { Theme } from '../webview/report/theme';
import { sampleReport } from './fixtures/sample-report';

const theme: Theme = { fg: '#000', muted: '#666', bg: '#fff', grid: '#ddd', font: 'sans-serif', fontSize: 12, warn: '#a60', series: ['#1', '#2', '#3'], kind: 'light' };

/** The sample report with its layers renamed (another architecture) and, optionally, only the first n. */
function renamed(names: string[], label: string): ChartSeries {
  const base = sampleReport();
  const layers = base.layers.slice(0, names.length).map((l, i) => ({ ...l, name: names[i] }));
  const report: Report = { ...base, layers, requestedLayers: names };
  return { label, report };
}

test('alignLayers: equal lists or one a subsequence of another share a names axis; otherwise relative depth', () => {
  assert.deepEqual(alignLayers([['a', 'b', 'c'], ['a', 'b', 'c']]), { mode: 'names', labels: ['a', 'b', 'c'] });
  // The same network, one report over fewer layers.
  assert.deepEqual(alignLayers([['a', 'c'], ['a', 'b', 'c']]), { mode: 'names', labels: ['a', 'b', 'c'] });
  assert.deepEqual(alignLayers([['x']]), { mode: 'names', labels: ['x'] });
  // Different architectures: names partly shared (conv2d_1 in both) but not one list inside the other.
  const a = alignLayers([['conv2d', 'conv2d_1', 'dense'], ['conv2d', 'conv2d_1', 'conv2d_2', 'pool', 'dense_1']]);
  assert.equal(a.mode, 'depth');
  if (a.mode !== 'depth') return;
  assert.deepEqual(a.series[0], { names: ['conv2d', 'conv2d_1', 'dense'], depth: [0, 0.5, 1] });
  assert.deepEqual(a.series[1], { names: ['conv2d', 'conv2d_1', 'conv2d_2', 'pool', 'dense_1'], depth: [0, 0.25, 0.5, 0.75, 1] });
  // Same names in another order is not one architecture's order either.
  assert.equal(alignLayers([['a', 'b'], ['b', 'a']]).mode, 'depth');
  assert.deepEqual(relativeDepths(1), [1]);
  assert.deepEqual(relativeDepths(0), []);
});

test('same architecture: one names axis, every line one point per label (unchanged behaviour)', () => {
  const series = [{ label: 'a', report: sampleReport() }, { label: 'b', report: sampleReport({ finishedLayers: 2 }) }];
  const spec = sidRuSpec(series, theme);
  assert.equal(spec.xAxis, undefined);
  assert.deepEqual(spec.labels, sampleReport().requestedLayers);
  for (const line of spec.lines) {
    assert.equal(line.data.length, spec.labels.length);
    assert.equal(line.x, undefined);
  }
  // The unfinished layer of b is a gap (null), not a point.
  assert.equal(spec.lines[1].data.filter((v) => v !== null).length, 2);
});

test('different architectures: each model at its own relative depth, each line only through its own layers', () => {
  const small = renamed(['c1', 'fc'], 'small');
  const big = renamed(['stem', 'stage1', 'gap'], 'big');
  for (const spec of [sidRuSpec([small, big], theme), concentrationSpec([small, big], 0, theme), baselinesSpec([small, big], theme)]) {
    assert.equal(spec.xAxis, 'depth', spec.yTitle);
    for (const line of spec.lines) {
      const own = line.label.startsWith('small') ? small : big;
      const names = own.report.requestedLayers;
      assert.deepEqual(line.names, names, `${line.label}: plotted at its own layers`);
      assert.deepEqual(line.x, relativeDepths(names.length), `${line.label}: at relative depth`);
      assert.equal(line.data.length, names.length, `${line.label}: one value per own layer, none at another model's names`);
    }
  }
  const sid = sidRuSpec([small, big], theme);
  // Values are the model's own layers' SIDs, in order.
  assert.deepEqual(sid.lines[0].data, small.report.layers.map((l) => l.sid.mean));
  assert.deepEqual(sid.lines[1].data, big.report.layers.map((l) => l.sid.mean));
  assert.deepEqual(sid.lines[0].x, [0, 1]);
  assert.deepEqual(sid.lines[1].x, [0, 0.5, 1]);
  // 'c1' and 'stem' share depth 0, but no line holds both: each line's names are one model's.
  assert.ok(!sid.lines.some((l) => l.names?.includes('c1') && l.names?.includes('stem')));
});

test('a lone model keeps the names axis even with the depth code in place', () => {
  const spec = sidRuSpec([renamed(['c1', 'c2', 'fc'], 'only')], theme);
  assert.equal(spec.xAxis, undefined);
  assert.deepEqual(spec.labels, ['c1', 'c2', 'fc']);
});
