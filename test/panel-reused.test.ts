/**
 * Resume in the panel (issue 13 §3): a layer taken over from an earlier report (`layers[].reused`) is marked as
 * reused in its table row; layers this run computed, and old reports without the field, are not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerRows } from '../webview/report/table';
import { normalizeReport } from '../webview/report/data';
import { sampleReport } from './fixtures/sample-report';

test('the table rows of a resumed report: reused layers flagged, computed ones not, old reports unflagged', () => {
  const r = sampleReport({ finishedLayers: 3, status: 'complete' });
  r.layers[0].reused = true;
  r.layers[1].reused = true;
  const rows = layerRows(normalizeReport(JSON.parse(JSON.stringify(r)))!);
  assert.deepEqual(rows.slice(0, 3).map((x) => [x.state, x.reused]), [['done', true], ['done', true], ['done', false]]);
  assert.ok(rows.slice(3).every((x) => x.reused === false), 'unfinished layers are not reused');
  const old = sampleReport({ finishedLayers: 2, status: 'complete' });
  for (const l of old.layers) delete (l as { reused?: boolean }).reused;
  assert.ok(layerRows(normalizeReport(JSON.parse(JSON.stringify(old)))!).every((x) => x.reused === false));
});
