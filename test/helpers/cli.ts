/** Runs the built CLI (dist/cli.js) and checks its contract for user mistakes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve('dist/cli.js');

export function runCli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts the one-line user error contract (exit 2, one "infodiscard: " line, no stack) and returns the line. */
export function expectUserError(args: string[], pattern: RegExp): string {
  const r = runCli(args);
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^infodiscard: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  return lines[0];
}
