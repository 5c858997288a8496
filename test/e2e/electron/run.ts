/**
 * Integration entry for a desktop VS Code (Electron): runs ./suite/index.js in VS Code's extension host with this
 * project as the extension under development, the way @vscode/test-electron's runTests does, without its download
 * (offline it fails): the VS Code is $VSCODE_EXECUTABLE, or one @vscode/test-electron cached in .vscode-test/.
 * With neither it prints one line and exits 0.
 *
 *   npm run build && VSCODE_EXECUTABLE=/path/to/code node --import tsx test/e2e/electron/run.ts
 *
 * Linux without a display runs it under xvfb-run when that is installed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The VS Code executable: $VSCODE_EXECUTABLE, else the newest one in .vscode-test/. */
function findVSCode(): string | undefined {
  const fromEnv = process.env.VSCODE_EXECUTABLE;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`VSCODE_EXECUTABLE=${fromEnv} does not exist`);
    return fromEnv;
  }
  const cache = path.join(ROOT, '.vscode-test');
  if (!existsSync(cache)) return undefined;
  const candidates = readdirSync(cache)
    .filter((d) => d.startsWith('vscode-'))
    .sort()
    .reverse()
    .flatMap((d) => [
      path.join(cache, d, 'code'), // linux (test-electron strips VSCode-linux-x64/)
      path.join(cache, d, 'VSCode-linux-x64', 'code'),
      path.join(cache, d, 'Visual Studio Code.app', 'Contents', 'MacOS', 'Electron'),
      path.join(cache, d, 'Code.exe'),
    ]);
  return candidates.find((c) => existsSync(c));
}

function main(): number {
  const executable = findVSCode();
  if (!executable) {
    console.log('skipped: no local VS Code (set VSCODE_EXECUTABLE)');
    return 0;
  }
  if (!existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
    console.error('dist/ is not built: run "npm run build" first');
    return 1;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-electron-'));
  try {
    // A workspace with one sample model, two images and short analyses.
    const ws = path.join(tmp, 'workspace');
    cpSync(path.join(ROOT, 'media', 'sample', 'fashion-cnn-early'), path.join(ws, 'model'), { recursive: true });
    mkdirSync(path.join(ws, 'images'));
    for (const f of ['0-tshirt.png', '1-trouser.png']) cpSync(path.join(ROOT, 'media', 'sample', 'images', f), path.join(ws, 'images', f));
    mkdirSync(path.join(ws, '.vscode'));
    writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'infodiscard.maxSteps': 10, 'infodiscard.images': 'images', 'infodiscard.layers': 'all' }, null, 2));

    const args = [
      ws,
      `--extensionDevelopmentPath=${ROOT}`,
      `--extensionTestsPath=${path.join(__dirname, 'suite', 'index.js')}`,
      `--user-data-dir=${path.join(tmp, 'user-data')}`,
      `--extensions-dir=${path.join(tmp, 'extensions')}`,
      '--disable-extensions',
      '--disable-workspace-trust',
      '--disable-telemetry',
      '--disable-updates',
      '--skip-welcome',
      '--skip-release-notes',
      '--disable-gpu',
      '--no-sandbox',
    ];
    const headless = process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
    const xvfb = headless && spawnSync('sh', ['-c', 'command -v xvfb-run'], { encoding: 'utf8' }).stdout.trim();
    if (headless && !xvfb) console.warn('no display and no xvfb-run: VS Code may fail to start (apt-get install xvfb)');
    const [cmd, cmdArgs] = xvfb ? [xvfb, ['-a', executable, ...args]] : [executable, args];
    const env: NodeJS.ProcessEnv = { ...process.env, INFODISCARD_E2E_WORKSPACE: ws };
    delete env.ELECTRON_RUN_AS_NODE;
    delete env.NODE_OPTIONS;
    const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', env, timeout: 10 * 60_000 });
    if (r.error) throw r.error;
    return r.status ?? 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = main();
