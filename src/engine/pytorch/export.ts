/**
 * TorchScript archives and torch.export programs -> ONNX, with the user's own Python (a child process with a
 * timeout). The ONNX is cached under `<outDir>/pytorch/<name>-<sha12>-<shape>/<name>.onnx` and reused while the
 * PyTorch file (its sha256) and the input shape are unchanged. Used by the CLI and the extension; no tfjs, no vscode.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CancelledError, UserError } from '../errors';
import { hasPyTorchExtension, inspectPyTorchFile, type PyTorchFileInfo } from './detect';
import { EXIT_NO_TORCH, EXIT_NOT_EXPORTABLE, EXIT_TORCH_TOO_OLD, EXPORT_SCRIPT, stateDictSnippet } from './script';

export { inspectPyTorchFile, hasPyTorchExtension, parseInputShape, PYTORCH_EXTENSIONS, type PyTorchFileInfo, type PyTorchKind } from './detect';
export { stateDictSnippet, EXPORT_SCRIPT } from './script';

export const DEFAULT_INPUT_SHAPE = [1, 3, 224, 224];
export const DEFAULT_EXPORT_TIMEOUT_MS = 300_000;
const SCRIPT_NAME = 'export_onnx.py';
const INSTALL = 'pip install torch';

export interface ExportOptions {
  /** The Python to run (an executable path or a name on PATH). */
  python: string;
  /** The input shape to trace with; undefined: the one recorded in the file, else DEFAULT_INPUT_SHAPE. */
  inputShape?: number[];
  /** Folder the exports are cached in (a `pytorch` folder is made inside it). */
  outDir: string;
  timeoutMs?: number;
  /** Each line the command prints (stdout and stderr), and the command itself first. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ExportResult {
  onnxPath: string;
  /** True when an earlier export of the same file and shape was reused (nothing ran). */
  reused: boolean;
  /** The command as run (or as it would run), quoted for a shell. */
  command: string;
  inputShape: number[];
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Quotes one argument for a POSIX shell (for the log; the process is spawned without a shell). */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function stem(file: string): string {
  return path.basename(file).replace(/\.(pt|pth|pt2|ptl)$/i, '').replace(/[^\w.-]+/g, '_') || 'model';
}

/** Where the ONNX of `file` (with this hash and shape) is cached. */
export function onnxCachePath(outDir: string, file: string, sha256: string, inputShape: number[]): string {
  const name = stem(file);
  return path.join(outDir, 'pytorch', `${name}-${sha256.slice(0, 12)}-${inputShape.join('x')}`, `${name}.onnx`);
}

/** The command that exports `info` (argv, and as one shell line). */
export function exportCommand(python: string, scriptPath: string, info: PyTorchFileInfo, onnxPath: string, inputShape: number[]): { argv: string[]; line: string } {
  const argv = [python, scriptPath, info.file, onnxPath, '--kind', info.kind, '--input-shape', inputShape.join(','), '--opset', '13'];
  return { argv, line: argv.map(shellQuote).join(' ') };
}

/**
 * What to tell the user about a PyTorch file that cannot be exported as it is (weights only, a pickled module, a
 * compiled package), as one line; undefined for the exportable kinds.
 */
export function notExportableReason(info: PyTorchFileInfo): string | undefined {
  switch (info.kind) {
    case 'state-dict':
      return 'holds weights only (a PyTorch state_dict), not the layers: build your model class, load these weights and export it to ONNX (the snippet does it: fill in your class), then analyse the .onnx';
    case 'pickled-module':
      return `is a whole pickled model (torch.save(model)) that needs its Python class (${info.userClasses?.slice(0, 2).join(', ')}) to load: export it to ONNX from your code (the snippet does it), or save it with torch.jit.save(torch.jit.trace(model, x), "model.pt")`;
    case 'legacy-pickle':
      return 'is a legacy (pre-1.6) torch.save pickle, weights or a pickled model: load it in your code and export it to ONNX (the snippet does it: fill in your class), then analyse the .onnx';
    case 'aoti-package':
      return 'is an AOTInductor package (compiled code, no graph to export): export the original model with torch.export.save or torch.jit.save instead';
    default:
      return undefined;
  }
}

/** A PyTorch file's info, or a UserError when it is not one. */
export function requirePyTorchFile(file: string): PyTorchFileInfo {
  const info = inspectPyTorchFile(file);
  if (!info) {
    throw new UserError('is not a PyTorch file (neither a TorchScript or torch.save zip archive, a torch.export .pt2 nor a torch.save pickle); save it with torch.jit.save or torch.save', file);
  }
  return info;
}

/** Whether `file` should be treated as a PyTorch file: its extension, or a zip that is one. */
export function isPyTorchFile(file: string): boolean {
  if (hasPyTorchExtension(file)) return true;
  try {
    const info = inspectPyTorchFile(file);
    return !!info && info.kind !== 'legacy-pickle';
  } catch {
    return false;
  }
}

interface RunResult {
  code: number | null;
  lines: string[];
  timedOut: boolean;
  spawnError?: NodeJS.ErrnoException;
}

function runLogged(argv: string[], timeoutMs: number, log: (l: string) => void, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    let timedOut = false;
    // Its own process group (POSIX), so a timeout or cancel also stops whatever it started.
    const group = process.platform !== 'win32';
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' }, detached: group });
    const kill = () => {
      try {
        if (group && child.pid) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const onLine = (stream: NodeJS.ReadableStream) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        rest += chunk;
        const parts = rest.split(/\r?\n/);
        rest = parts.pop() ?? '';
        for (const l of parts) {
          lines.push(l);
          log(l);
        }
      });
      stream.on('end', () => {
        if (rest) {
          lines.push(rest);
          log(rest);
        }
      });
    };
    onLine(child.stdout!);
    onLine(child.stderr!);
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    const abort = () => kill();
    signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve({ code: null, lines, timedOut, spawnError: e as NodeJS.ErrnoException });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve({ code, lines, timedOut });
    });
  });
}

/**
 * Exports a TorchScript archive or torch.export program to ONNX with `options.python`, or reuses the cached export.
 * Every failure is one UserError line naming the file: no Python, no torch (what to install), too old a torch,
 * the exporter's own error, the timeout.
 */
export async function exportPyTorchToOnnx(file: string, options: ExportOptions): Promise<ExportResult> {
  const info = requirePyTorchFile(file);
  const why = notExportableReason(info);
  if (why) throw new UserError(why, file);
  const log = options.log ?? (() => {});
  const inputShape = options.inputShape ?? info.recordedInputShape ?? DEFAULT_INPUT_SHAPE;
  const sha = await sha256File(file);
  const onnxPath = onnxCachePath(options.outDir, file, sha, inputShape);
  const dir = path.dirname(onnxPath);
  const scriptPath = path.join(dir, SCRIPT_NAME);
  const { argv, line } = exportCommand(options.python, scriptPath, info, onnxPath, inputShape);
  const provenance = path.join(dir, 'export.json');
  if (existsSync(onnxPath) && existsSync(provenance)) {
    log(`reusing ${onnxPath} (exported from this ${path.basename(file)}, sha256 ${sha.slice(0, 12)}, input ${inputShape.join('x')})`);
    return { onnxPath, reused: true, command: line, inputShape };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(scriptPath, EXPORT_SCRIPT);
  log(`$ ${line}`);
  if (options.signal?.aborted) throw new CancelledError();
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS;
  const r = await runLogged(argv, timeoutMs, log, options.signal);
  if (options.signal?.aborted) throw new CancelledError();
  if (r.spawnError) {
    const what = r.spawnError.code === 'ENOENT' ? 'was not found' : `cannot be run (${r.spawnError.code ?? r.spawnError.message})`;
    throw new UserError(`exporting to ONNX needs Python with PyTorch, and the Python "${options.python}" ${what}: install Python 3 and PyTorch (${INSTALL}), or name your Python (infodiscard.python setting, --python)`, file);
  }
  if (r.timedOut) {
    throw new UserError(`the export to ONNX did not finish in ${Math.round(timeoutMs / 1000)} s and was stopped; run the command by hand to see why: ${line}`, file);
  }
  if (r.code === EXIT_NO_TORCH || (r.code !== 0 && r.lines.some((l) => /No module named '?torch'?/.test(l)))) {
    throw new UserError(`the Python "${options.python}" has no PyTorch: install it (${shellQuote(options.python)} -m ${INSTALL}), or name a Python that has it (infodiscard.python setting, --python)`, file);
  }
  const said = [...r.lines].reverse().find((l) => /^infodiscard: /.test(l))?.replace(/^infodiscard: /, '');
  if (r.code === EXIT_TORCH_TOO_OLD) throw new UserError(`${said ?? 'this torch is too old for the file'}; upgrade PyTorch (${shellQuote(options.python)} -m pip install -U torch)`, file);
  if (r.code === EXIT_NOT_EXPORTABLE) throw new UserError(`${said ?? 'torch.onnx.export failed'} (the command and its output are in the log)`, file);
  const result = [...r.lines].reverse().find((l) => l.startsWith('INFODISCARD_RESULT '));
  if (r.code !== 0 || !result || !existsSync(onnxPath)) {
    const last = [...r.lines].reverse().find((l) => l.trim().length > 0) ?? `exit code ${r.code}`;
    throw new UserError(`the export to ONNX failed (${last.trim()}); the command and its output are in the log`, file);
  }
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(result.slice('INFODISCARD_RESULT '.length)) as Record<string, unknown>;
  } catch {
    /* informative only */
  }
  writeFileSync(provenance, `${JSON.stringify({ source: path.resolve(file), sha256: sha, kind: info.kind, command: line, ...details, exportedAt: new Date().toISOString() }, null, 2)}\n`);
  return { onnxPath, reused: false, command: line, inputShape };
}

/** The snippet for a file that holds weights only (or a pickled module), with the ONNX path it writes. */
export function snippetFor(info: PyTorchFileInfo, inputShape: number[] = info.recordedInputShape ?? DEFAULT_INPUT_SHAPE): string {
  const onnx = path.join(path.dirname(info.file), `${stem(info.file)}.onnx`);
  const kind = info.kind === 'pickled-module' || info.kind === 'legacy-pickle' ? info.kind : 'state-dict';
  return stateDictSnippet(info.file, onnx, inputShape, kind, info.userClasses);
}
