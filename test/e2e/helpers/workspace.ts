/**
 * The workspace folder the end-to-end suite opens: copies of the sample models and the six sample images, a malformed
 * model.json, a model with a hostile layer name, the sample training script, and workspace settings that keep
 * analyses short.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeGraphModel } from '../../fixtures/graphModel';
import { ROOT } from './codeServer';

/** A layer name that is an HTML injection attempt. */
export const XSS_NAME = "<img src=x onerror=document.title='pwned'>";

export interface Workspace {
  dir: string;
  /** Workspace-relative paths. */
  models: { cnn: string; early: string; cancel: string; malformed: string; afterError: string; xss: string };
  trainScript: string;
  xssScript: string;
  settingsFile: string;
  reportsDir: string;
  setSettings(extra: Record<string, unknown>): void;
}

export const BASE_SETTINGS = {
  // The default step limit and six images: the analysis must outlast the webview's first draw, or scenario 1 sees
  // the chart complete at once (it did, with two images and 40 steps, on an idle machine).
  'infodiscard.maxSteps': 200,
  'infodiscard.images': 'images',
  // The scenarios analyse every layer without the layer picker (which has its own mocked tests).
  'infodiscard.layers': 'all',
  // Nor the preprocessing prompt (the first-analysis scenario turns it on).
  'infodiscard.preprocessingPrompt': false,
};

export function makeWorkspace(): Workspace {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-e2e-ws-'));
  const sample = path.join(ROOT, 'media', 'sample');
  const copyModel = (from: string, to: string): void => cpSync(path.join(sample, from), path.join(dir, to), { recursive: true });
  copyModel('fashion-cnn', 'fashion-cnn');
  copyModel('fashion-cnn-early', 'fashion-cnn-early');
  // Same model, own folders: their own report files, so each of these scenarios runs a real analysis.
  copyModel('fashion-cnn', 'cancel-me');
  copyModel('fashion-cnn-early', 'after-error');

  mkdirSync(path.join(dir, 'images'));
  for (const f of readdirSync(path.join(sample, 'images')).filter((f) => f.endsWith('.png'))) cpSync(path.join(sample, 'images', f), path.join(dir, 'images', f));

  // Cut off in the middle of the JSON.
  mkdirSync(path.join(dir, 'broken'));
  const text = readFileSync(path.join(sample, 'fashion-cnn', 'model.json'), 'utf8');
  writeFileSync(path.join(dir, 'broken', 'model.json'), text.slice(0, Math.floor(text.length / 2)));

  // TensorFlow.js Layers models refuse such a name ("Not a valid tensor name"); graph models take any node name.
  const graph = writeGraphModel(path.join(dir, 'hostile'), {
    input: [28, 28, 1],
    layers: [{ kind: 'conv', filters: 4, kernel: 3, activation: 'Relu' }, { kind: 'conv', filters: 4, kernel: 3, activation: 'Relu' }],
    prefix: 'net',
  });
  const target = graph.nodes.find((n) => n.op === 'Relu')!.name;
  const json = JSON.parse(readFileSync(graph.file, 'utf8')) as { modelTopology: { node: { name: string; input?: string[] }[] } };
  for (const node of json.modelTopology.node) {
    if (node.name === target) node.name = XSS_NAME;
    if (node.input) node.input = node.input.map((i) => (i === target ? XSS_NAME : i));
  }
  writeFileSync(graph.file, JSON.stringify(json));

  cpSync(path.join(sample, 'train_fashion_cnn.py'), path.join(dir, 'train_fashion_cnn.py'));
  writeFileSync(path.join(dir, 'probe_hostile.py'), [
    '# Hovering the string below shows the hostile layer\'s SID as text.',
    `layer = model.get_layer("${XSS_NAME}")`,
    '',
  ].join('\n'));

  const settingsFile = path.join(dir, '.vscode', 'settings.json');
  mkdirSync(path.dirname(settingsFile));
  const setSettings = (extra: Record<string, unknown>): void => writeFileSync(settingsFile, JSON.stringify({ ...BASE_SETTINGS, ...extra }, null, 2));
  setSettings({});

  return {
    dir,
    models: {
      cnn: 'fashion-cnn/model.json',
      early: 'fashion-cnn-early/model.json',
      cancel: 'cancel-me/model.json',
      malformed: 'broken/model.json',
      afterError: 'after-error/model.json',
      xss: 'hostile/model.json',
    },
    trainScript: 'train_fashion_cnn.py',
    xssScript: 'probe_hostile.py',
    settingsFile,
    reportsDir: path.join(dir, '.infodiscard'),
    setSettings,
  };
}
