/** Reads and writes report JSON. Writes are atomic (temp file + rename) so a crash never leaves half a report. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';
import { SCHEMA_VERSION, type Report } from './report';

export function writeReport(file: string, report: Report): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(report));
  renameSync(tmp, file);
}

export function readReport(file: string): Report {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`is not a readable report (${(e as Error).message.split('\n')[0]})`, file);
  }
  return parseReport(text, file);
}

/** Parses and checks report JSON read elsewhere (the extension reads files asynchronously). `file` names it in errors. */
export function parseReport(text: string, file: string): Report {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UserError(`is not a readable report (${(e as Error).message.split('\n')[0]})`, file);
  }
  const r = data as Report;
  if (!r || typeof r !== 'object' || r.tool?.name !== 'infodiscard' || !Array.isArray(r.layers)) {
    throw new UserError('is not an infodiscard report', file);
  }
  if (r.schemaVersion > SCHEMA_VERSION) {
    throw new UserError(`was written by a newer infodiscard (schema ${r.schemaVersion}, this one reads up to ${SCHEMA_VERSION}); update infodiscard`, file);
  }
  return r;
}
