// One esbuild invocation per bundle. The CLI and the worker carry the engine; the webview bundle is browser code.
// Every @tensorflow package stays external (resolved from node_modules at run time): the optional tfjs-node
// registers its backend on the tfjs-core it requires, so the engine must use that same copy, not a bundled one.
// The wasm backend then finds its .wasm binaries in its own package folder.
import * as esbuild from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const watch = process.argv.includes('--watch');
const dist = path.join(root, 'dist');

const nodeCommon = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // @cwasm/webp (libwebp in wasm) reads its webp.wasm beside its own index.js: resolved from node_modules at run time.
  // webgpu (optional, Dawn's Node bindings: an ES module that loads its native dist/<platform>/dawn.node) is imported
  // at run time by the engine's backend selection only, so the extension host never loads it.
  external: ['@tensorflow/*', 'vscode', '@cwasm/webp', 'webgpu', 'onnxruntime-node'],
};

const builds = [
  { ...nodeCommon, entryPoints: [path.join(root, 'src/cli/main.ts')], outfile: path.join(dist, 'cli.js'), banner: { js: '#!/usr/bin/env node' } },
  { ...nodeCommon, entryPoints: [path.join(root, 'src/worker/main.ts')], outfile: path.join(dist, 'worker.js') },
  { ...nodeCommon, entryPoints: [path.join(root, 'src/extension/main.ts')], outfile: path.join(dist, 'extension.js') },
  {
    bundle: true, platform: 'browser', target: 'es2022', format: 'iife', sourcemap: false, minify: true, logLevel: 'warning',
    entryPoints: [path.join(root, 'webview/report/main.ts')], outfile: path.join(dist, 'webview.js'),
  },
].filter((b) => existsSync(b.entryPoints[0]));

await mkdir(dist, { recursive: true });
if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
