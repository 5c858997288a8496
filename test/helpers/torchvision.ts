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
const SCRIPT = path.join(ROOT, 'scripts', 'test-data', 'torchvision-onnx.py');
const PYTHON = '/usr/bin/python3';

export type Manifest = Record<string, { file: string; size: number; error?: string }>;

function torchAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' });
  return r.status === 0 ? null : `torch/torchvision/onnx not importable by ${PYTHON} (install Debian python3-torch python3-torchvision python3-onnx)`;
}

function readManifest(): Manifest | null {
  const mf = path.join(TORCHVISION_DIR, 'manifest.json');
  return existsSync(mf) ? (JSON.parse(readFileSync(mf, 'utf8')) as Manifest) : null;
}

/**
 * Exports the named architectures that are not cached yet. Returns the manifest, or why the exports cannot be made
 * here (no torch: the caller skips with that reason). Throws when the export script itself fails.
 */
export function ensureTorchvisionExports(names: string[]): { manifest: Manifest | null; skipReason: string } {
  const missingIn = (m: Manifest | null) => names.filter((n) => !m?.[n] || (!m[n].error && !existsSync(path.join(TORCHVISION_DIR, m[n].file))));
  if (missingIn(readManifest()).length === 0) return { manifest: readManifest(), skipReason: '' };
  const why = torchAvailable();
  if (why) return { manifest: readManifest(), skipReason: `${missingIn(readManifest()).join(', ')} not exported in ${TORCHVISION_DIR} and ${why}` };
  // Test files may run in parallel: one export at a time, and what another made meanwhile is not made again.
  return withLock(() => {
    const missing = missingIn(readManifest());
    if (missing.length) {
      const r = spawnSync(PYTHON, [SCRIPT, '--out', TORCHVISION_DIR, ...missing], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (r.status !== 0) throw new Error(`${SCRIPT} failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
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
