/**
 * PyTorch and Keras to_json files in the extension, with the mocked VS Code: which Python exports (the Python
 * extension's interpreter, else infodiscard.python, else python3), a state_dict's one line and its snippet in an
 * untitled editor, the export offered as the input-shape prompt (Escape declines), the ONNX in the reports folder
 * with the command in the log and reused the second time, and the context key that puts Keras .json files in the
 * Explorer menu. The export runs Debian's python3-torch (skipped, with the reason, without it).
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ctx } from '../src/extension/ctx';
import { OPEN_SNIPPET, modelToAnalyse } from '../src/extension/pytorch';
import { pythonFor } from '../src/extension/pytorch/python';
import { KERAS_JSON_CONTEXT, refreshKerasJsonFiles } from '../src/extension/kerasJsonMenu';
import { tempDir, writeGrayPng } from './helpers/fixtures';
import { activate } from '../src/extension/main';
import { ReportPanel } from '../src/extension/panel';
import * as vscode from 'vscode';

const PYTHON = process.env.INFODISCARD_TEST_PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' }).status === 0;
const skip = hasTorch ? false : `no PyTorch at ${PYTHON} (apt-get install python3-torch python3-onnx)`;
const DATA = path.resolve('.test-data/pytorch');
const ws = tempDir('infodiscard-ext-pytorch-');
let ctx: Ctx;

before(() => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  ctx = new Ctx(makeExtensionContext() as unknown as vscode.ExtensionContext);
  if (hasTorch && !existsSync(path.join(DATA, 'reference.json'))) {
    const r = spawnSync(PYTHON, [path.resolve('scripts/test-data/make-pytorch-files.py'), DATA], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
});

test('the Python: the Python extension\'s selected interpreter, else the setting, else python3 on PATH', async () => {
  mock.extensions.clear();
  mock.config.clear();
  assert.deepEqual(await pythonFor(undefined), { command: process.platform === 'win32' ? 'python' : 'python3', source: 'PATH' });
  mock.config.set('infodiscard.python', '/opt/py/bin/python');
  assert.deepEqual(await pythonFor(undefined), { command: '/opt/py/bin/python', source: 'setting' });
  let activated = false;
  const api = {
    environments: {
      getActiveEnvironmentPath: () => ({ path: '/home/u/.venv' }),
      resolveEnvironment: async () => ({ executable: { uri: Uri.file('/home/u/.venv/bin/python') } }),
    },
  };
  mock.extensions.set('ms-python.python', { isActive: false, exports: undefined, activate: async () => ((activated = true), api) });
  assert.deepEqual(await pythonFor(Uri.file(path.join(ws, 'm.pt'))), { command: '/home/u/.venv/bin/python', source: 'python extension' });
  assert.ok(activated, 'the Python extension is activated to ask it');
  mock.extensions.clear();
  mock.config.clear();
});

test('a non-PyTorch model is analysed as it is', async () => {
  const onnx = Uri.file(path.join(ws, 'm.onnx'));
  assert.equal(await modelToAnalyse(ctx, onnx), onnx);
});

test('a state_dict: one line saying it holds weights only, and the snippet opens in an untitled editor', { skip }, async () => {
  const file = path.join(ws, 'weights.pth');
  copyFileSync(path.join(DATA, 'weights.pth'), file);
  mock.answer.message = (_m, items) => items.find((i) => i === OPEN_SNIPPET);
  const got = await modelToAnalyse(ctx, Uri.file(file));
  assert.equal(got, undefined);
  const msg = mock.messages.at(-1)!;
  assert.equal(msg.level, 'warning');
  assert.match(msg.message, /^infodiscard: weights\.pth holds weights only \(a PyTorch state_dict\)/);
  assert.equal(msg.message.split('\n').length, 1);
  const doc = mock.documents.at(-1)!;
  assert.equal(doc.language, 'python');
  assert.match(doc.content ?? '', /model\.load_state_dict\(state\)/);
  assert.match(doc.content ?? '', /MyModel\(\) {2}# TODO/);
  assert.ok(mock.shownDocuments.length > 0, 'the snippet is shown');
  mock.answer.message = undefined;
});

test('a TorchScript file: the input-shape prompt is the offer (Escape declines); the export lands in the reports folder, logged, and is reused', { skip }, async () => {
  const file = path.join(ws, 'models', 'scripted.pt');
  mkdirSync(path.dirname(file), { recursive: true });
  copyFileSync(path.join(DATA, 'scripted.pt'), file);
  mock.config.set('infodiscard.python', PYTHON);
  let asked: { title?: string; value?: string; validateInput?(v: string): string | undefined } | undefined;
  mock.answer.inputBox = (o) => ((asked = o as typeof asked), undefined);
  assert.equal(await modelToAnalyse(ctx, Uri.file(file)), undefined, 'Escape: nothing is exported');
  assert.match(asked?.title ?? '', new RegExp(`scripted\\.pt is a TorchScript archive: export it to ONNX with ${PYTHON.replace(/\//g, '\\/')}\\?`));
  assert.equal(asked?.value, '1x3x16x16', 'the shape recorded in the archive is offered');
  assert.equal(asked?.validateInput?.('1x3xfoo'), 'an input shape such as 1x3x224x224');
  assert.equal(existsSync(path.join(ws, '.infodiscard', 'pytorch')), false);

  mock.answer.inputBox = (o) => (o as { value: string }).value;
  mock.log.length = 0;
  const onnx = await modelToAnalyse(ctx, Uri.file(file));
  assert.ok(onnx, 'exported');
  assert.ok(onnx.fsPath.startsWith(path.join(ws, '.infodiscard', 'pytorch', 'scripted-')), onnx.fsPath);
  assert.ok(existsSync(onnx.fsPath));
  assert.ok(mock.log.some((l) => l.includes(`$ ${PYTHON} `) && l.includes('export_onnx.py') && l.includes('--input-shape 1,3,16,16')), mock.log.join('\n'));
  assert.ok(mock.log.some((l) => /torch \d/.test(l)), 'the script\'s output is in the log');
  assert.equal(mock.progress.at(-1)?.options.cancellable, true);

  mock.log.length = 0;
  const again = await modelToAnalyse(ctx, Uri.file(file));
  assert.equal(again?.fsPath, onnx.fsPath);
  assert.ok(mock.log.some((l) => l.includes('reusing')), mock.log.join('\n'));
  mock.answer.inputBox = undefined;
  mock.config.clear();
});

test('a missing Python: one line saying what to install', { skip }, async () => {
  const file = path.join(ws, 'other.pt');
  copyFileSync(path.join(DATA, 'scripted_noshape.pt'), file);
  mock.config.set('infodiscard.python', path.join(ws, 'no-such-python'));
  mock.answer.inputBox = () => '1x3x16x16';
  await assert.rejects(modelToAnalyse(ctx, Uri.file(file)), /other\.pt: exporting to ONNX needs Python with PyTorch, and the Python ".*no-such-python" was not found: install Python 3 and PyTorch/);
  mock.answer.inputBox = undefined;
  mock.config.clear();
});

test('Keras to_json files with weights beside them are listed for the Explorer menu', async () => {
  const dir = path.join(ws, 'keras');
  mkdirSync(dir, { recursive: true });
  const json = { class_name: 'Sequential', config: { name: 's', layers: [] }, keras_version: '2.15.0', backend: 'tensorflow' };
  writeFileSync(path.join(dir, 'net.json'), JSON.stringify(json));
  writeFileSync(path.join(dir, 'net.weights.h5'), 'x');
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'p' }));
  writeFileSync(path.join(dir, 'package.h5'), 'x');
  const original = vscode.workspace.findFiles;
  (vscode.workspace as { findFiles: unknown }).findFiles = async () => [Uri.file(path.join(dir, 'net.weights.h5')), Uri.file(path.join(dir, 'package.h5'))];
  try {
    assert.deepEqual(await refreshKerasJsonFiles(), [path.join(dir, 'net.json')]);
    assert.deepEqual(mock.contextKeys.get(KERAS_JSON_CONTEXT), [path.join(dir, 'net.json')]);
  } finally {
    (vscode.workspace as { findFiles: unknown }).findFiles = original;
  }
});

test('Analyze Model… on a TorchScript file: exported, then the ONNX analysed into the reports folder, labelled by the .pt', { skip, timeout: 180_000 }, async () => {
  const root = path.resolve('.');
  const file = path.join(ws, 'e2e', 'tiny.pt');
  mkdirSync(path.join(ws, 'e2e', 'images'), { recursive: true });
  copyFileSync(path.join(DATA, 'scripted.pt'), file);
  writeGrayPng(path.join(ws, 'e2e', 'images', 'a.png'), 16, 16, (x, y) => ((x * 2 + y) % 9) / 8);
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  const ext = activate(makeExtensionContext(root, path.join(ws, 'storage')) as never);
  try {
    for (const [k, v] of Object.entries({ images: 'e2e/images', backend: 'wasm', maxSteps: 5, samplesPerStep: 2, workers: 1, python: PYTHON })) mock.config.set(`infodiscard.${k}`, v);
    mock.answer.inputBox = (o) => (o as { value: string }).value;
    await mock.commands.get('infodiscard.analyzeModel')!(Uri.file(file));
    assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
    const reports = path.join(ws, '.infodiscard');
    const files = readdirSync(reports).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, files.join(', '));
    assert.match(files[0], /^tiny-[0-9a-f]{12}-/);
    const report = JSON.parse(readFileSync(path.join(reports, files[0]), 'utf8')) as { status: string; model: { format: string; path: string }; layers: unknown[] };
    assert.equal(report.status, 'complete');
    assert.equal(report.model.format, 'onnx');
    assert.ok(report.model.path.startsWith(path.join(reports, 'pytorch', 'tiny-')), report.model.path);
    assert.ok(report.layers.length > 0);
    assert.equal(mock.panels[0]?.title, 'SID: tiny');
  } finally {
    ReportPanel.all().forEach((p) => p.dispose());
    await ext.dispose();
    mock.answer.inputBox = undefined;
  }
});
