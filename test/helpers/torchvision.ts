/**
 * torchvision architectures exported to ONNX with Debian's torch (scripts/test-data/torchvision-onnx.py), cached in
 * .cache/torchvision-onnx/ (or INFODISCARD_TORCHVISION_DIR) and made on first use by whichever test needs them, so
 * a fresh clone runs every test that reads them instead of skipping those that happen to run before the export.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
export const TORCHVISION_DIR = process.env.INFODISCARD_TORCHVISION_DIR ?? path.join(ROOT, '.cache', 'torchvision-onnx');
export const TORCHVISION_SCRIPT = path.join(ROOT, 'scripts', 'test-data', 'torchvision-onnx.py');
/** Debian's Python, with python3-torch, python3-torchvision and python3-onnx (another python3 may be first on PATH). */
export const PYTHON = '/usr/bin/python3';

export type Manifest = Record<string, { file: string; size: number; error?: string }>;

/** Why the exports cannot be made here, or null when Debian's torch, torchvision and onnx import. */
export function torchAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' });
  return r.status === 0 ? null : `torch/torchvision/onnx not importable by ${PYTHON} (install Debian python3-torch python3-torchvision python3-onnx)`;
}

function readManifest(): Manifest | null {
  const mf = path.join(TORCHVISION_DIR, 'manifest.json');
  return existsSync(mf) ? (JSON.parse(readFileSync(mf, 'utf8')) as Manifest) : null;
}

/** The path of a usable cached export of `name` (in the manifest, not failed, its file there), else null. */
export function cachedExport(name: string, manifest = readManifest()): string | null {
  const entry = manifest?.[name];
  const file = entry && !entry.error ? path.join(TORCHVISION_DIR, entry.file) : null;
  return file && existsSync(file) ? file : null;
}

/**
 * Exports the named architectures that are not cached yet. Returns the manifest, or why the exports cannot be made
 * here (no torch: the caller skips with that reason). Throws when the export script itself fails.
 */
export function ensureTorchvisionExports(names: string[]): { manifest: Manifest | null; skipReason: string } {
  // Missing: not in the manifest, or its file gone (a recorded export error is not retried).
  const missingIn = (m: Manifest | null) => names.filter((n) => !m?.[n] || (!m[n].error && !cachedExport(n, m)));
  const manifest = readManifest();
  const missing = missingIn(manifest);
  if (missing.length === 0) return { manifest, skipReason: '' };
  const why = torchAvailable();
  if (why) return { manifest, skipReason: `${missing.join(', ')} not exported in ${TORCHVISION_DIR} and ${why}` };
  // Test files may run in parallel: one export at a time, and what another made meanwhile is not made again.
  return withLock(() => {
    const still = missingIn(readManifest());
    if (still.length) {
      const r = spawnSync(PYTHON, [TORCHVISION_SCRIPT, '--out', TORCHVISION_DIR, ...still], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.status !== 0) throw new Error(`${TORCHVISION_SCRIPT} failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
    }
    return { manifest: readManifest(), skipReason: '' };
  });
}

/** Runs `f` holding a lock folder beside the cache (mkdir is atomic); a lock older than 15 minutes is stale. */
function withLock<T>(f: () => T): T {
  const lock = `${TORCHVISION_DIR}.lock`;
  mkdirSync(path.dirname(lock), { recursive: true });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      else if (held) Atomics.wait(pause, 0, 0, 500);
    }
  }
  try {
    return f();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
