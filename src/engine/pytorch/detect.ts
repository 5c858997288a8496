/**
 * What kind of PyTorch file a .pt/.pth/.pt2 is, read from its zip directory without Python (no tfjs here: the
 * extension bundle imports this file).
 *  - TorchScript (torch.jit.save): `<archive>/code/…`, `<archive>/constants.pkl`, `<archive>/data.pkl`.
 *  - torch.export (.pt2, torch.export.save): `serialized_exported_program.json` (torch 2.1–2.5) or the PT2 archive
 *    (`archive_format` = "pt2", `models/…`, torch 2.6+). An AOTInductor package (`data/aotinductor/…`) is compiled
 *    code, not a program: it cannot be exported.
 *  - torch.save of a state_dict (or a checkpoint dict): `<archive>/data.pkl` with no `code/`; of a whole nn.Module:
 *    the same, but its pickle names the user's own class (loading it needs that class).
 *  - the legacy (pre-1.6, non-zip) torch.save pickle.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { UserError } from '../errors';

export type PyTorchKind = 'torchscript' | 'exported-program' | 'aoti-package' | 'state-dict' | 'pickled-module' | 'legacy-pickle';

export interface PyTorchFileInfo {
  file: string;
  kind: PyTorchKind;
  /** Input shape recorded in the archive (TorchScript extra file `input_shape`: "1,3,224,224" or a JSON list). */
  recordedInputShape?: number[];
  /** The classes the pickle names that are not torch's or Python's own (a pickled module's class), for messages. */
  userClasses?: string[];
}

/** File names that are PyTorch's by convention. */
export const PYTORCH_EXTENSIONS = ['pt', 'pth', 'pt2', 'ptl'];

export function hasPyTorchExtension(file: string): boolean {
  return /\.(pt|pth|pt2|ptl)$/i.test(file);
}

interface ZipEntry {
  name: string;
  method: number;
  compSize: number;
  size: number;
  localOffset: number;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

/** The entries of a zip file from its central directory (zip64 included), without reading the data. */
export function zipDirectory(fd: number, size: number): ZipEntry[] | null {
  const tailLen = Math.min(size, 22 + 0xffff + 20);
  const tail = readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return null;
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: the locator sits just before the end record
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) return null;
    const z64 = Number(tail.readBigUInt64LE(loc + 8));
    const rec = readAt(fd, z64, 56);
    if (rec.length < 56 || rec.readUInt32LE(0) !== 0x06064b50) return null;
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > size || cdSize > 64 * 1024 * 1024) return null;
  const cd = readAt(fd, cdOffset, cdSize);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) return null;
    const method = cd.readUInt16LE(p + 10);
    let compSize = cd.readUInt32LE(p + 20);
    let uncompSize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field: the sizes and offset that overflowed, in this order
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = cd.readUInt16LE(q);
      const len = cd.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let r = q + 4;
        if (uncompSize === 0xffffffff) (uncompSize = Number(cd.readBigUInt64LE(r))), (r += 8);
        if (compSize === 0xffffffff) (compSize = Number(cd.readBigUInt64LE(r))), (r += 8);
        if (localOffset === 0xffffffff) localOffset = Number(cd.readBigUInt64LE(r));
      }
      q += 4 + len;
    }
    out.push({ name, method, compSize, size: uncompSize, localOffset });
    p = extraEnd + commentLen;
  }
  return out;
}

function entryData(fd: number, e: ZipEntry, limit: number): Buffer | null {
  if (e.size > limit) return null;
  const local = readAt(fd, e.localOffset, 30);
  if (local.length < 30 || local.readUInt32LE(0) !== 0x04034b50) return null;
  const start = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  const raw = readAt(fd, start, e.compSize);
  if (e.method === 0) return raw;
  if (e.method === 8) {
    try {
      return inflateRawSync(raw);
    } catch {
      return null;
    }
  }
  return null;
}

/** "1,3,224,224", "1x3x224x224" or "[1, 3, 224, 224]" -> [1, 3, 224, 224]; undefined if not a shape. */
export function parseInputShape(text: string): number[] | undefined {
  const t = text.trim().replace(/^[[(]|[\])]$/g, '');
  if (!t) return undefined;
  const parts = t.split(/\s*[,x×]\s*/i);
  const dims = parts.map((s) => Number(s));
  if (dims.length < 2 || dims.length > 5 || !dims.every((d) => Number.isInteger(d) && d >= 1 && d <= 100_000)) return undefined;
  return dims;
}

/** The `module\nname` pairs of GLOBAL opcodes and the strings before STACK_GLOBAL opcodes: the classes a pickle names. */
function pickleGlobals(pkl: Buffer): string[] {
  const out = new Set<string>();
  const text = pkl.toString('latin1');
  // protocol 0-3 GLOBAL: 'c' module '\n' name '\n'
  for (const m of text.matchAll(/c([A-Za-z_][\w.]*)\n([A-Za-z_][\w.]*)\n/g)) out.add(`${m[1]}.${m[2]}`);
  // protocol 4+ STACK_GLOBAL (0x93) after two SHORT_BINUNICODE (0x8c len str) strings, possibly memoised (0x94)
  for (const m of text.matchAll(/\x8c([\s\S])([\s\S]*?)\x94?\x8c([\s\S])([\s\S]*?)\x94?\x93/g)) {
    const mod = m[2].slice(0, m[1].charCodeAt(0));
    const name = m[4].slice(0, m[3].charCodeAt(0));
    if (/^[A-Za-z_][\w.]*$/.test(mod) && /^[A-Za-z_][\w]*$/.test(name)) out.add(`${mod}.${name}`);
  }
  return [...out];
}

/** Names a state_dict or checkpoint pickle may hold besides tensors (torch's, numpy's and Python's own). */
function isLibraryClass(q: string): boolean {
  return /^(torch|collections|builtins|__builtin__|numpy|_codecs|copyreg|typing|argparse|pathlib|datetime|enum)\./.test(q);
}

/**
 * The kind of a PyTorch file, or null when it is not one (not a zip with data.pkl / a PT2 archive, nor a torch.save
 * pickle). Reads only the zip directory and the small pickle/extra entries.
 */
export function inspectPyTorchFile(file: string): PyTorchFileInfo | null {
  let fd: number;
  let size: number;
  try {
    size = statSync(file).size;
    fd = openSync(file, 'r');
  } catch (e) {
    throw new UserError(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  try {
    const magic = readAt(fd, 0, 4);
    if (magic.length >= 2 && magic[0] === 0x80 && magic[1] >= 2 && magic[1] <= 5) {
      // torch.save before 1.6 (or with _use_new_zipfile_serialization=False): a pickle that starts with torch's magic number
      return { file, kind: 'legacy-pickle' };
    }
    if (magic.length < 4 || magic.readUInt32LE(0) !== 0x04034b50) return null;
    const entries = zipDirectory(fd, size);
    if (!entries) return null;
    const names = entries.map((e) => e.name);
    const find = (re: RegExp) => entries.find((e) => re.test(e.name));
    if (find(/(^|\/)data\/aotinductor\//)) return { file, kind: 'aoti-package' };
    if (find(/(^|\/)serialized_exported_program\.json$/) || find(/(^|\/)archive_format$/) || find(/(^|\/)models\/[^/]+\.json$/)) {
      return { file, kind: 'exported-program' };
    }
    const hasCode = names.some((n) => /(^|\/)code\//.test(n));
    const constants = find(/(^|\/)constants\.pkl$/);
    const data = find(/(^|\/)data\.pkl$/);
    if (hasCode && (constants || data)) {
      const info: PyTorchFileInfo = { file, kind: 'torchscript' };
      const extra = find(/(^|\/)extra\/input_shape$/);
      const text = extra && entryData(fd, extra, 4096)?.toString('utf8');
      const shape = text ? parseInputShape(text) : undefined;
      if (shape) info.recordedInputShape = shape;
      return info;
    }
    if (data) {
      const pkl = entryData(fd, data, 64 * 1024 * 1024);
      const user = pkl ? pickleGlobals(pkl).filter((q) => !isLibraryClass(q)) : [];
      return user.length ? { file, kind: 'pickled-module', userClasses: user } : { file, kind: 'state-dict' };
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
