/**
 * Chooses the TensorFlow.js backend. tfjs-node ('tensorflow') is the fastest on a CPU but optional: it is used when
 * it loads. Then WebGPU, on a hardware adapter only (the optional `webgpu` package: Dawn's Node bindings, with
 * @tensorflow/tfjs-backend-webgpu); a software adapter (llvmpipe, lavapipe, SwiftShader) is ~20x slower than wasm,
 * so it is refused unless INFODISCARD_WEBGPU_ALLOW_SOFTWARE=1 (tests). Otherwise wasm (SIMD), with our registered
 * kernels for input gradients. The pure-JS cpu backend is only used when asked for: it is two orders of magnitude
 * slower. The WebGPU packages are loaded here only, at run time (worker and CLI), never by the extension host.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's CommonJS build registers no gradient functions; tfjs-layers' build registers all of them in the
// global gradient registry when it loads (tfjs-core's own register_all_gradients is ESM-only).
import '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from './errors';
import { adapterLabel, type BackendName, type GpuAdapter } from './report';

export { adapterLabel };
import { registerGradientFixes, registerWasmKernels } from './kernels';

export type BackendChoice = 'auto' | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/** Lets a software WebGPU adapter run (tests and CI; it is far slower than wasm). */
export const ALLOW_SOFTWARE_ENV = 'INFODISCARD_WEBGPU_ALLOW_SOFTWARE';

export interface SelectOptions {
  /**
   * False: this process must leave the GPU to another one (a worker pool runs one GPU job at a time per device):
   * `webgpu` runs on wasm instead and `auto` skips webgpu. Default true.
   */
  gpu?: boolean;
}

let tfjsNodeError: string | null = null;
let tfjsNodeTried = false;

/** Loads @tensorflow/tfjs-node if it is installed and works; returns why not otherwise. */
function tryLoadTfjsNode(): boolean {
  if (!tfjsNodeTried) {
    tfjsNodeTried = true;
    try {
      // Synchronous and inside try: a missing or broken install is a catchable error (the bundle keeps it external).
      require('@tensorflow/tfjs-node');
    } catch (e) {
      tfjsNodeError = (e as Error).message.split('\n')[0];
    }
  }
  return tfjsNodeError === null && tf.findBackend('tensorflow') !== null;
}

function wasmDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

// ---------------------------------------------------------------------------------------------------------------
// WebGPU

/** Names of CPU rasterisers that expose a WebGPU (or Vulkan/GL) adapter. */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|swift shader|microsoft basic render|\bsoftware\b/i;

interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
  requestDevice(descriptor?: unknown): Promise<{ lost: Promise<{ message?: string }>; destroy(): void }>;
}

/** The adapter as the report records it; `software` when it is a fallback adapter or a CPU rasteriser. */
export function describeAdapter(adapter: Pick<AdapterLike, 'info' | 'isFallbackAdapter'>): GpuAdapter {
  const i = adapter.info ?? {};
  const out = { vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '' };
  const software =
    adapter.isFallbackAdapter === true ||
    i.isFallbackAdapter === true ||
    out.architecture.toLowerCase() === 'software' ||
    SOFTWARE_NAMES.test(`${out.vendor} ${out.architecture} ${out.device} ${out.description}`);
  return { ...out, software };
}

type WebgpuReady = { ok: true; adapter: GpuAdapter } | { ok: false; reason: string };
let webgpuReady: Promise<WebgpuReady> | undefined;
let webgpuAdapter: GpuAdapter | undefined;
let webgpuUnavailable: string | null = null;

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/** Makes `navigator.gpu` the Dawn instance (Node 20 has no navigator; Node 21+ has one without gpu). */
function installNavigatorGpu(gpu: unknown): void {
  const g = globalThis as { navigator?: object };
  if (g.navigator && Object.isExtensible(g.navigator)) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
}

interface Attempt {
  options: string[];
  featureLevel: 'core' | 'compatibility';
}

/**
 * Dawn instances to try, in order: the default (Vulkan, Metal, D3D12), then OpenGL ES in compatibility mode (Dawn's
 * GL backend offers no core adapter), which on a machine without a GPU is Mesa's llvmpipe: a software adapter, so
 * only used when allowed, but found so that the error can say so.
 */
const ATTEMPTS: readonly Attempt[] = [
  { options: [], featureLevel: 'core' },
  { options: ['backend=opengles'], featureLevel: 'compatibility' },
];

type ProbeResult = ({ info: AdapterLike['info']; isFallbackAdapter?: boolean } | { error: string } | null)[];

/** Asks each Dawn instance for an adapter and prints what it found, as JSON; run in a child process. */
const PROBE_SCRIPT = `
const { create } = await import(process.argv[1]);
const out = [];
for (const a of JSON.parse(process.argv[2])) {
  try {
    const adapter = await create(a.options).requestAdapter({ powerPreference: 'high-performance', featureLevel: a.featureLevel });
    const i = adapter && adapter.info;
    out.push(i ? { info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter }, isFallbackAdapter: adapter.isFallbackAdapter } : null);
  } catch (e) {
    out.push({ error: String((e && e.message) || e).split('\\n')[0] });
  }
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

const PROBE_TIMEOUT_MS = 30_000;

/**
 * Which adapters Dawn offers, asked in a child process: Dawn and the drivers print to the process's stderr while
 * enumerating (Vulkan loader and Mesa messages), and a broken driver must not take an analysis down with it.
 */
async function probeAdapters(url: string, tries: readonly Attempt[], env: NodeJS.ProcessEnv): Promise<ProbeResult | string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE_SCRIPT, url, JSON.stringify(tries)],
      { env: { ...env, ELECTRON_RUN_AS_NODE: '1' }, timeout: PROBE_TIMEOUT_MS, maxBuffer: 1 << 20 },
      (error, stdout) => {
        try {
          const parsed = JSON.parse(stdout) as ProbeResult;
          if (Array.isArray(parsed)) return resolve(parsed);
        } catch {
          // fall through
        }
        resolve(`the WebGPU adapter probe failed (${error ? firstLine(error) : 'no answer'})`);
      },
    );
  });
}

/**
 * Finds an adapter and registers a 'webgpu' backend on it (once per process). Dawn's default instance first (Vulkan,
 * Metal, D3D12); with software allowed, also Dawn's OpenGL ES backend in compatibility mode (Mesa's llvmpipe through
 * surfaceless EGL), which needs no display. Resolves with why not when there is no usable adapter.
 */
function prepareWebgpu(): Promise<WebgpuReady> {
  webgpuReady ??= (async (): Promise<WebgpuReady> => {
    const allowSoftware = process.env[ALLOW_SOFTWARE_ENV] === '1';
    let entry: string;
    try {
      entry = require.resolve('webgpu');
    } catch (e) {
      return { ok: false, reason: `the optional "webgpu" package is not installed (${firstLine(e)})` };
    }
    const tries = ATTEMPTS;
    // Mesa's EGL needs no display this way; an explicit setting wins.
    const env = { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' };
    const found = await probeAdapters(pathToFileURL(entry).href, tries, env);
    if (typeof found === 'string') return { ok: false, reason: found };
    const refused: string[] = [];
    let pick: { attempt: Attempt; info: GpuAdapter } | undefined;
    found.forEach((r, k) => {
      if (pick || !r) return;
      if ('error' in r) return void refused.push(`${tries[k].options.join(' ') || 'default'}: ${r.error}`);
      const info = describeAdapter(r);
      if (info.software && !allowSoftware) return void refused.push(adapterLabel(info));
      pick = { attempt: tries[k], info };
    });
    if (!pick) {
      const why = refused.length > 0 ? `only ${refused.join('; ')}` : 'none found';
      return { ok: false, reason: `no hardware WebGPU adapter (${why}${allowSoftware ? '' : `; ${ALLOW_SOFTWARE_ENV}=1 allows a software one`})` };
    }
    let dawn: { create(options: string[]): { requestAdapter(o?: unknown): Promise<AdapterLike | null> }; globals: Record<string, unknown> };
    let chosen: { gpu: unknown; adapter: AdapterLike; info: GpuAdapter };
    try {
      // A non-literal specifier: the bundles never inline this ES module (it loads a native dawn.node).
      const spec = pathToFileURL(entry).href;
      dawn = (await import(spec)) as typeof dawn;
      if (pick.attempt.options.includes('backend=opengles')) process.env.EGL_PLATFORM = env.EGL_PLATFORM;
      const gpu = dawn.create(pick.attempt.options);
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel: pick.attempt.featureLevel });
      if (!adapter) return { ok: false, reason: `the adapter the probe found (${adapterLabel(pick.info)}) is gone` };
      chosen = { gpu, adapter, info: describeAdapter(adapter) };
    } catch (e) {
      return { ok: false, reason: `the optional "webgpu" package did not load (${firstLine(e)})` };
    }
    Object.assign(globalThis, dawn.globals);
    installNavigatorGpu(chosen.gpu);
    let WebGPUBackend: new (device: unknown, adapterInfo: unknown) => tf.KernelBackend;
    try {
      // CommonJS, external to the bundles like every @tensorflow package (it shares our tfjs-core). It registers its
      // kernels, and a backend factory that asks navigator.gpu for an adapter itself: ours replaces that factory, so
      // the backend runs on the adapter chosen here.
      ({ WebGPUBackend } = require('@tensorflow/tfjs-backend-webgpu'));
    } catch (e) {
      return { ok: false, reason: `@tensorflow/tfjs-backend-webgpu did not load (${firstLine(e)})` };
    }
    const { adapter, info } = chosen;
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend(
      'webgpu',
      async () => {
        const l = adapter.limits;
        const device = await adapter.requestDevice({
          requiredLimits: {
            maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
            maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
            maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
            maxBufferSize: l.maxBufferSize,
            maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
            maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          },
        });
        void device.lost.then((lost) => {
          // Not after an orderly destroy (process exit): a lost device mid-analysis fails the next kernel anyway.
          if (lost?.message && !/destroy/i.test(lost.message)) process.stderr.write(`webgpu: device lost: ${lost.message}\n`);
        });
        const backend = new WebGPUBackend(device, adapter.info);
        // tf.profile (src/engine/sampleBatch.ts measures memory with it) would otherwise tell the user, once, to restart
        // Chrome with a Dawn flag for kernel timings, which nothing here reads.
        (backend as unknown as { hasTimestampQueryWarned: boolean }).hasTimestampQueryWarned = true;
        return backend;
      },
      // Below cpu (1): never picked implicitly, only by setBackend('webgpu').
      0,
    );
    return { ok: true, adapter: info };
  })();
  return webgpuReady;
}

/**
 * Sets `fallback` after a failed webgpu initialisation. tfjs leaves tf.getBackend() naming the failed backend until
 * another one is set explicitly, so this is never left to tfjs.
 */
async function setFallback(fallback: BackendName): Promise<void> {
  if (fallback === 'wasm') setWasmPaths(wasmDir());
  if (!(await tf.setBackend(fallback))) throw new UserError(`backend "${fallback}" failed to initialise; try --backend cpu`, '--backend');
  await tf.ready();
  if (fallback === 'wasm') registerWasmKernels();
}

export async function selectBackend(choice: BackendChoice, options: SelectOptions = {}): Promise<BackendName> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`unknown backend "${choice}"; use one of ${BACKEND_CHOICES.join(', ')}`, '--backend');
  }
  const gpu = options.gpu !== false;
  let name: BackendName | undefined;
  if (choice === 'tensorflow' || choice === 'auto') {
    if (tryLoadTfjsNode()) {
      name = 'tensorflow';
    } else if (choice === 'tensorflow') {
      throw new UserError(
        `@tensorflow/tfjs-node is not available (${tfjsNodeError ?? 'backend not registered'}); install it with "npm install @tensorflow/tfjs-node" or use --backend wasm`,
        '--backend',
      );
    }
  }
  if (name === undefined && (choice === 'webgpu' || choice === 'auto') && gpu) {
    const ready = await prepareWebgpu();
    if (ready.ok) {
      let ok = false;
      let why = 'the backend did not initialise';
      try {
        ok = await tf.setBackend('webgpu');
        if (ok) await tf.ready();
      } catch (e) {
        ok = false;
        why = firstLine(e);
      }
      if (ok) {
        registerGradientFixes();
        webgpuAdapter = ready.adapter;
        return 'webgpu';
      }
      await setFallback('wasm');
      if (choice === 'webgpu') throw new UserError(`webgpu: ${adapterLabel(ready.adapter)}: ${why}; use --backend wasm`, '--backend');
      webgpuUnavailable = `${adapterLabel(ready.adapter)}: ${why}`;
    } else {
      webgpuUnavailable = ready.reason;
      if (choice === 'webgpu') throw new UserError(`webgpu is not available: ${ready.reason}; use --backend wasm`, '--backend');
    }
  }
  // `webgpu` in a process that leaves the GPU to another worker, or `auto` without a usable GPU: wasm.
  name ??= choice === 'auto' || choice === 'webgpu' ? 'wasm' : choice;
  if (name === 'wasm') setWasmPaths(wasmDir());
  const ok = await tf.setBackend(name);
  if (!ok) throw new UserError(`backend "${name}" failed to initialise; try --backend cpu`, '--backend');
  await tf.ready();
  if (name === 'wasm') registerWasmKernels();
  return name;
}

/** The WebGPU adapter the current backend runs on (undefined unless the backend is webgpu). */
export function currentAdapter(): GpuAdapter | undefined {
  return tf.getBackend() === 'webgpu' ? webgpuAdapter : undefined;
}

/** Why tfjs-node is not in use, for logs (null when it is, or was never tried). */
export function tfjsNodeUnavailableReason(): string | null {
  return tfjsNodeError;
}

/** Why webgpu is not in use, for logs (null when it is, or was never tried). */
export function webgpuUnavailableReason(): string | null {
  return webgpuUnavailable;
}
