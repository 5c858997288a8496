/** Reading a sharded analysis's part files (the CLI's merge and the extension's Open Report… on a folder). */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';
import { PART_NAME, parsePart, type ShardPart } from './shards';

/** The part files named on the command line: files as given, folders' shard-I-of-N.json files. */
export function partFiles(specs: readonly string[]): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    let st;
    try {
      st = statSync(spec);
    } catch {
      throw new UserError('no such file or folder; give the parts folder (--out of analyze --shard) or shard-I-of-N.json files', spec);
    }
    if (st.isDirectory()) {
      const names = readdirSync(spec).filter((n) => PART_NAME.test(n));
      if (names.length === 0) throw new UserError('folder has no shard parts (shard-I-of-N.json); run infodiscard analyze … --shard I/N --out <this folder>', spec);
      const index = (n: string) => Number(PART_NAME.exec(n)![1]);
      out.push(...names.sort((a, b) => index(a) - index(b) || a.localeCompare(b)).map((n) => path.join(spec, n)));
    } else {
      out.push(spec);
    }
  }
  return out;
}

export function readParts(specs: readonly string[]): { file: string; part: ShardPart }[] {
  return partFiles(specs).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError(`is not readable (${(e as Error).message.split('\n')[0]})`, file);
    }
    return { file, part: parsePart(text, file) };
  });
}

/** Writes JSON to `file` through a temp file and a rename: readers see the old file or the whole new one. */
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, file);
}
