/** Which image files an analysis reads, from files and folders (no TensorFlow.js: the extension host uses it too). */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

/** Files as given, folders as their PNG/JPEG files in name order. */
export function collectImagePaths(specs: string[]): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    let st;
    try {
      st = statSync(spec);
    } catch {
      throw new UserError('no such file or folder; give PNG/JPEG files or a folder of them', spec);
    }
    if (st.isDirectory()) {
      const files = readdirSync(spec)
        .filter((f) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase()))
        .sort()
        .map((f) => path.join(spec, f));
      if (files.length === 0) throw new UserError('folder has no .png, .jpg or .jpeg images', spec);
      out.push(...files);
    } else {
      out.push(spec);
    }
  }
  if (out.length === 0) throw new UserError('no images given; pass --images <files or folder>', '--images');
  return out;
}
