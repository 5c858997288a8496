/** Which image files an analysis reads, from files and folders (no TensorFlow.js: the extension host uses it too). */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';

/** Extensions of the formats images.ts decodes; a folder contributes its files with these. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp'];

/** Image formats people keep in image folders that no decoder here reads: skipped with a warning, not silently. */
export const UNSUPPORTED_IMAGE_EXTENSIONS = ['.heic', '.heif', '.avif', '.jxl', '.jp2', '.j2k', '.ico', '.svg', '.psd', '.tga', '.ppm', '.pgm', '.pbm', '.pnm', '.dng', '.cr2', '.nef', '.arw', '.raw', '.exr', '.hdr'];

export type ImageFormat = 'png' | 'jpeg' | 'bmp' | 'gif' | 'tiff' | 'webp';

/** The format by the file's first bytes (at least 12), or undefined when it is none of the decoded ones. */
export function imageFormat(head: Uint8Array): ImageFormat | undefined {
  const b = head;
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42))) return 'tiff';
  if (b.length >= 14 && ascii(0, 2) === 'BM') return 'bmp';
  return undefined;
}

function headOf(file: string): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const buf = new Uint8Array(16);
    const n = readSync(fd, buf, 0, 16, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export interface SkippedImage {
  path: string;
  reason: string;
}

export interface CollectedImages {
  /** Files as given, then each folder's decodable images in name order. */
  paths: string[];
  /** Files in the folders that look like images but will not be read, with why (for one warning line). */
  skipped: SkippedImage[];
}

/**
 * Files as given (a file that is not a decodable image errors when it is decoded), folders as their images in
 * name order. In a folder, a file with an image extension whose bytes are not that of a decoded format, or with
 * an image extension no decoder here reads (.heic, .avif, ...), is skipped and listed in `skipped`.
 */
export function collectImages(specs: string[]): CollectedImages {
  const out: string[] = [];
  const skipped: SkippedImage[] = [];
  for (const spec of specs) {
    let st;
    try {
      st = statSync(spec);
    } catch {
      throw new UserError(`no such file or folder; give image files (${IMAGE_EXTENSIONS.join(' ')}) or a folder of them`, spec);
    }
    if (st.isDirectory()) {
      const { files, skipped: here } = folderImages(spec);
      skipped.push(...here);
      if (files.length === 0) {
        const also = here.length > 0 ? ` (skipped: ${here.map((s) => path.basename(s.path)).join(', ')})` : '';
        throw new UserError(`folder has no images that can be read (${IMAGE_EXTENSIONS.join(' ')})${also}`, spec);
      }
      out.push(...files);
    } else {
      out.push(spec);
    }
  }
  if (out.length === 0) throw new UserError('no images given; pass --images <files or folder>', '--images');
  return { paths: out, skipped };
}

/**
 * A folder's images in name order (not recursive) and the image-looking files in it that will not be read: an image
 * extension whose bytes are not that format's, or an extension no decoder here reads (.heic, .avif, ...). Files
 * with other extensions (boxes.json, notes) are neither. Never throws for an empty folder.
 */
export function folderImages(dir: string): { files: string[]; skipped: SkippedImage[] } {
  const files: string[] = [];
  const skipped: SkippedImage[] = [];
  for (const name of readdirSync(dir).sort()) {
    const ext = path.extname(name).toLowerCase();
    const file = path.join(dir, name);
    if (UNSUPPORTED_IMAGE_EXTENSIONS.includes(ext)) {
      skipped.push({ path: file, reason: `${ext.slice(1).toUpperCase()} is not read` });
      continue;
    }
    if (!IMAGE_EXTENSIONS.includes(ext)) continue;
    let format: ImageFormat | undefined;
    try {
      if (!statSync(file).isFile()) continue;
      format = imageFormat(headOf(file));
    } catch (e) {
      skipped.push({ path: file, reason: `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
      continue;
    }
    if (!format) skipped.push({ path: file, reason: 'not an image of a known format' });
    else files.push(file);
  }
  return { files, skipped };
}

/** Files as given, folders as their decodable images in name order (collectImages without the skipped list). */
export function collectImagePaths(specs: string[]): string[] {
  return collectImages(specs).paths;
}

/** One warning line naming every skipped file, or undefined when none was skipped. */
export function skippedFilesWarning(skipped: readonly SkippedImage[]): string | undefined {
  if (skipped.length === 0) return undefined;
  const list = skipped.map((s) => `${s.path} (${s.reason})`).join(', ');
  return `skipped ${skipped.length} file${skipped.length === 1 ? '' : 's'} that cannot be read as images: ${list}; convert them to PNG to include them`;
}
