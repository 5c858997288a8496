/**
 * code-server for the end-to-end suite: installed (once, into .e2e-tools/) by scripts/e2e-tools.sh, started
 * detached in its own process group on a free 127.0.0.1 port with throw-away user data, extensions and XDG
 * folders, with this project symlinked in as the installed extension; stopped by killing the whole group (extension
 * hosts and analysis workers included).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const OUT = path.join(ROOT, 'out', 'e2e');

export interface Tools {
  node24: string;
  codeServer: string;
  chromium: string;
}

/** Runs scripts/e2e-tools.sh (a no-op when the tools are there) and returns their paths. */
export function ensureTools(): Tools {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'e2e-tools.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  const kv = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  if (!kv.NODE24 || !kv.CODE_SERVER || !kv.CHROMIUM) throw new Error(`scripts/e2e-tools.sh printed no paths:\n${out}`);
  return { node24: kv.NODE24, codeServer: kv.CODE_SERVER, chromium: kv.CHROMIUM };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Settings for a quiet, deterministic workbench (User settings in the user-data-dir). */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.editor.enablePreview': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'chat.commandCenter.enabled': false,
  'chat.agent.enabled': false,
  'security.workspace.trust.enabled': false,
  'git.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  'explorer.autoReveal': true,
  'editor.hover.delay': 200,
  'editor.minimap.enabled': false,
  'files.simpleDialog.enable': true,
  'window.commandCenter': false,
  // The secondary side bar (chat) would take a third of the window.
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

export class CodeServer {
  private constructor(
    readonly url: string,
    readonly pid: number,
    readonly tmp: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts code-server on `workspace` and waits for /healthz. */
  static async start(tools: Tools, workspace: string): Promise<CodeServer> {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-e2e-cs-'));
    const dirs = {
      userData: path.join(tmp, 'user-data'),
      extensions: path.join(tmp, 'extensions'),
      xdgData: path.join(tmp, 'xdg-data'),
      xdgConfig: path.join(tmp, 'xdg-config'),
    };
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
    writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
    // The built extension, installed as publisher.name-version.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { publisher: string; name: string; version: string };
    symlinkSync(ROOT, path.join(dirs.extensions, `${pkg.publisher}.${pkg.name}-${pkg.version}`), 'dir');

    const port = await freePort();
    mkdirSync(OUT, { recursive: true });
    const logFile = path.join(OUT, 'code-server.log');
    const fd = openSync(logFile, 'w');
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_DATA_HOME: dirs.xdgData, XDG_CONFIG_HOME: dirs.xdgConfig };
    // Not for code-server's Node processes: the test runner's and tsx's hooks.
    delete env.NODE_OPTIONS;
    delete env.NODE_TEST_CONTEXT;
    delete env.VSCODE_IPC_HOOK_CLI;
    env.PATH = `${path.dirname(tools.node24)}:${env.PATH ?? ''}`;
    const child = spawn(tools.node24, [
      tools.codeServer,
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--user-data-dir', dirs.userData,
      '--extensions-dir', dirs.extensions,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      workspace,
    ], { detached: true /* setsid: its own process group */, stdio: ['ignore', fd, fd], env });
    closeSync(fd);
    if (child.pid === undefined) throw new Error('code-server did not start');
    const server = new CodeServer(`http://127.0.0.1:${port}`, child.pid, tmp, logFile, child);
    // If the test process dies, the group goes with it.
    process.once('exit', () => server.killGroup('SIGKILL'));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}); see ${logFile}`);
      try {
        const res = await fetch(`${server.url}/healthz`);
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        server.killGroup('SIGKILL');
        throw new Error(`code-server did not answer /healthz within 60 s; see ${logFile}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return server;
  }

  /** The processes of this code-server's process group: pid and command line. */
  processes(): { pid: number; args: string }[] {
    const out = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
    return out.split('\n').flatMap((line) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
      return m && Number(m[2]) === this.pid ? [{ pid: Number(m[1]), args: m[3] }] : [];
    });
  }

  /** The analysis worker processes (dist/worker.js) this code-server's extension host forked. */
  workers(): { pid: number; args: string }[] {
    return this.processes().filter((p) => p.args.includes(path.join('dist', 'worker.js')));
  }

  private killGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** Stops every process of the group (TERM, then KILL after 5 s) and deletes the temporary folders. */
  async stop(): Promise<void> {
    this.killGroup('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (this.processes().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    this.killGroup('SIGKILL');
    while (this.processes().length > 0 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 100));
    this.child.unref();
    // Keep VS Code's logs (the extension's "infodiscard" output channel among them) for a look after a failure.
    const logs = path.join(OUT, 'code-server-logs');
    rmSync(logs, { recursive: true, force: true });
    try {
      cpSync(path.join(this.tmp, 'user-data', 'logs'), logs, { recursive: true });
    } catch {
      // no logs written
    }
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
