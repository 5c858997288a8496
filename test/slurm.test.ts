/**
 * The cluster recipes of docs/cluster.md, run for real: a one-node Slurm cluster on localhost (Debian's slurm-wlm and
 * munge, started as root with a config written here) runs scripts/cluster/slurm-submit.sh (a 4-shard job array and
 * the dependent merge), and the merged report must equal a one-process run. The Kubernetes manifests are checked
 * field by field, and the command lines their pods would run must be the ones the Slurm jobs ran.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Report } from '../src/engine/report';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { CLI } from './helpers/cli';

const ROOT = path.resolve('.');
const CLUSTER = path.join(ROOT, 'scripts/cluster');
const dir = tempDir('infodiscard-cluster-');
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

type Env = Record<string, string>;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function manifests(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(path.join(CLUSTER, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.join('; ')}`);
    return d.toJS() as K8sObject;
  });
}

/** The container's env as a map, /data (the shared volume's mount) moved to the test's folder. */
function containerEnv(job: K8sObject, mount: string, data: string): Env {
  const env: Env = {};
  for (const { name, value } of job.spec.template.spec.containers[0].env as { name: string; value: string }[]) {
    env[name] = value.startsWith(`${mount}/`) || value === mount ? data + value.slice(mount.length) : value;
  }
  return env;
}

/** A stand-in for infodiscard that appends its argv (shell-quoted, one line per call) to $ARGV_LOG, then runs the real CLI if $RUN. */
function recorder(): string {
  const file = path.join(dir, 'bin', 'infodiscard-recorded');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/bash\nline="$(printf '%q ' "$@")"\nprintf '%s\\n' "$line" >> "$ARGV_LOG"\nif [ -n "\${RUN:-}" ]; then exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"; fi\n`);
  chmodSync(file, 0o755);
  return file;
}

function logLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).sort() : [];
}

const shards = manifests('k8s-shards.yaml');
const merges = manifests('k8s-merge.yaml');
const indexed = shards.find((o) => o.kind === 'Job')!;
const mergeJob = merges.find((o) => o.kind === 'Job')!;
const mount = indexed?.spec.template.spec.containers[0].volumeMounts[0].mountPath as string;
const data = path.join(dir, 'data');
const shardEnv = containerEnv(indexed, mount, data);
const mergeEnv = containerEnv(mergeJob, mount, data);
const SHARDS = Number(shardEnv.SHARDS);

/** The shard and merge command lines the Kubernetes pods run (their sh -c with the manifest's env), recorded. */
function k8sCommandLines(): string[] {
  const log = path.join(dir, 'k8s-argv.log');
  rmSync(log, { force: true });
  const bin = recorder();
  const container = (job: K8sObject) => job.spec.template.spec.containers[0];
  for (let i = 0; i < SHARDS; i++) {
    execFileSync(container(indexed).command[0], [...container(indexed).command.slice(1), ...container(indexed).args], {
      env: { PATH: process.env.PATH!, ...shardEnv, JOB_COMPLETION_INDEX: String(i), INFODISCARD: bin, ARGV_LOG: log },
    });
  }
  // The merge waits for parts to appear, then merges until complete: give it part files (the recorder exits 0).
  const parts = path.join(dir, 'k8s-parts');
  mkdirSync(parts, { recursive: true });
  for (let i = 0; i < SHARDS; i++) writeFileSync(path.join(parts, `shard-${i}-of-${SHARDS}.json`), '');
  execFileSync(container(mergeJob).command[0], [...container(mergeJob).command.slice(1), ...container(mergeJob).args], {
    env: { PATH: process.env.PATH!, ...mergeEnv, PARTS: parts, POLL_SECONDS: '0.1', INFODISCARD: bin, ARGV_LOG: log },
    timeout: 10_000,
  });
  return logLines(log).map((l) => l.replaceAll(parts, mergeEnv.PARTS));
}

test('Kubernetes: an Indexed Job of SHARDS pods and a merge Job on one shared volume, running the Slurm scripts\' command lines', () => {
  const pvc = shards.find((o) => o.kind === 'PersistentVolumeClaim')!;
  assert.ok(pvc, 'the shared volume is declared');
  assert.ok(pvc.spec.accessModes.includes('ReadWriteMany'), 'every pod mounts it');
  assert.equal(indexed.apiVersion, 'batch/v1');
  assert.equal(indexed.spec.completionMode, 'Indexed');
  assert.equal(indexed.spec.completions, SHARDS, 'one completion per shard');
  assert.ok(indexed.spec.parallelism >= 1 && indexed.spec.parallelism <= SHARDS);
  assert.equal(mergeJob.apiVersion, 'batch/v1');
  for (const job of [indexed, mergeJob]) {
    const pod = job.spec.template.spec;
    assert.ok(['Never', 'OnFailure'].includes(pod.restartPolicy), `${job.metadata.name}: a Job's pods restart Never or OnFailure`);
    const c = pod.containers[0];
    assert.ok(typeof c.image === 'string' && c.image.length > 0);
    assert.deepEqual(c.command, ['/bin/sh', '-c']);
    assert.equal(c.args.length, 1);
    assert.equal(c.volumeMounts[0].mountPath, mount);
    const volume = pod.volumes.find((v: { name: string }) => v.name === c.volumeMounts[0].name);
    assert.equal(volume?.persistentVolumeClaim?.claimName, pvc.metadata.name, `${job.metadata.name}: the shared claim`);
    for (const [k, v] of Object.entries(job === indexed ? shardEnv : mergeEnv)) {
      if (['MODEL', 'IMAGES', 'PARTS', 'REPORT', 'HTML'].includes(k)) assert.ok(v.startsWith(data), `${k} lies on the shared volume`);
    }
  }
  assert.match(indexed.spec.template.spec.containers[0].args[0], /--shard "\$JOB_COMPLETION_INDEX\/\$SHARDS"/);
  assert.equal(shardEnv.PARTS, mergeEnv.PARTS, 'the merge reads the folder the shards write');

  // The Slurm scripts, given the same values, build the same command lines.
  const log = path.join(dir, 'slurm-dry-argv.log');
  const bin = recorder();
  for (let i = 0; i < SHARDS; i++) {
    execFileSync('bash', [path.join(CLUSTER, 'slurm-shard.sbatch')], { env: { PATH: process.env.PATH!, ...shardEnv, SLURM_ARRAY_TASK_ID: String(i), INFODISCARD: bin, ARGV_LOG: log } });
  }
  execFileSync('bash', [path.join(CLUSTER, 'slurm-merge.sbatch')], { env: { PATH: process.env.PATH!, ...mergeEnv, INFODISCARD: bin, ARGV_LOG: log } });
  const k8s = k8sCommandLines();
  assert.equal(k8s.length, SHARDS + 1);
  assert.deepEqual(logLines(log), k8s);
  assert.ok(k8s.some((l) => l.includes(`--shard ${SHARDS - 1}/${SHARDS}`)));
});

function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8', env: { PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
}

function slurmSkip(): string | false {
  if (process.platform !== 'linux') return 'Slurm runs on Linux';
  if (process.getuid?.() !== 0) return 'not root: starting slurmctld, slurmd and munged needs root';
  const missing = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo', 'scontrol'].filter((b) => !which(b));
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install slurm-wlm munge)`;
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, seconds: number, check: () => boolean): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (check()) return;
    await sleep(250);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

test('Slurm: a real one-node cluster runs the 4-shard array and the dependent merge; the report is the one-process report', { skip: slurmSkip() }, async (t) => {
  const s = path.join(dir, 'slurm');
  for (const d of ['state', 'spool', 'log', 'munge']) mkdirSync(path.join(s, d), { recursive: true });
  chmodSync(path.join(s, 'munge'), 0o755);
  const sbin = `${process.env.PATH}:/usr/sbin:/sbin`;
  const key = path.join(s, 'munge.key');
  writeFileSync(key, execFileSync('head', ['-c', '1024', '/dev/urandom']), { mode: 0o400 });
  const socket = path.join(s, 'munge', 'munge.sock');
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = path.join(s, 'slurm.conf');
  writeFileSync(conf, [
    'ClusterName=infodiscard-test',
    'SlurmctldHost=localhost',
    `SlurmctldPort=${ctldPort}`,
    `SlurmdPort=${dPort}`,
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${socket}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${s}/state`,
    `SlurmdSpoolDir=${s}/spool`,
    `SlurmctldPidFile=${s}/slurmctld.pid`,
    `SlurmdPidFile=${s}/slurmd.pid`,
    `SlurmctldLogFile=${s}/log/slurmctld.log`,
    `SlurmdLogFile=${s}/log/slurmd.log`,
    // No cgroups in a container: track processes by parent, no task binding, no accounting.
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_CPU',
    'MpiDefault=none',
    'ReturnToService=2',
    // Four one-CPU array tasks at once, whatever this machine has.
    'SlurmdParameters=config_overrides',
    'NodeName=localhost NodeHostname=localhost CPUs=4 RealMemory=1000 State=UNKNOWN',
    'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n'));
  writeFileSync(path.join(s, 'cgroup.conf'), 'CgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n');
  const env = { ...process.env, PATH: sbin, SLURM_CONF: conf };
  const pids: string[] = [];
  const stop = async () => {
    for (const f of [`${s}/slurmd.pid`, `${s}/slurmctld.pid`, `${s}/munge/munged.pid`]) {
      if (!existsSync(f)) continue;
      const pid = Number(readFileSync(f, 'utf8').trim());
      try {
        process.kill(pid, 'SIGTERM');
        await waitFor(`process ${pid} to stop`, 15, () => {
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        });
      } catch {
        // Already gone.
      }
    }
  };
  try {
    execFileSync('munged', ['--force', `--socket=${socket}`, `--key-file=${key}`, `--log-file=${s}/log/munged.log`, `--pid-file=${s}/munge/munged.pid`, `--seed-file=${s}/munge/munged.seed`], { env });
    pids.push('munged');
    execFileSync('slurmctld', ['-i', '-f', conf], { env });
    execFileSync('slurmd', ['-f', conf, '-N', 'localhost'], { env });
    await waitFor('the node to be idle', 30, () => spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim() === 'idle');

    // The data on the "shared volume": the manifest's paths under this test's folder.
    await saveLayersModel(reluConvNet(7, 1), path.dirname(shardEnv.MODEL));
    mkdirSync(shardEnv.IMAGES, { recursive: true });
    writeGrayPng(path.join(shardEnv.IMAGES, 'a.png'), 7, 7, (x, y) => (x + y) / 14);
    writeGrayPng(path.join(shardEnv.IMAGES, 'b.png'), 7, 7, (x, y) => ((x * y) % 7) / 6);
    writeGrayPng(path.join(shardEnv.IMAGES, 'c.png'), 7, 7, (x, y) => (x > 3 ? 0.9 : 0.1) + y / 80);

    const oneFile = path.join(dir, 'one.json');
    const t1 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'analyze', shardEnv.MODEL, '--images', shardEnv.IMAGES, '--out', oneFile, '--workers', '1', '--quiet', ...shardEnv.ANALYZE_ARGS.split(/\s+/)], { encoding: 'utf8' });
    const oneSeconds = (performance.now() - t1) / 1000;
    assert.equal(r.status, 0, r.stderr);

    const log = path.join(dir, 'slurm-argv.log');
    const t2 = performance.now();
    const submitted = execFileSync('bash', [path.join(CLUSTER, 'slurm-submit.sh')], {
      cwd: dir,
      env: { ...env, ...shardEnv, REPORT: mergeEnv.REPORT, HTML: mergeEnv.HTML, LOGS: path.join(dir, 'logs'), INFODISCARD: recorder(), RUN: '1', ARGV_LOG: log },
      encoding: 'utf8',
    });
    const array = /array (\d+)/.exec(submitted)![1];
    const merge = /merge (\d+)/.exec(submitted)![1];
    await waitFor('the array and the merge job', 120, () => spawnSync('squeue', ['-h', '-j', `${array},${merge}`], { env, encoding: 'utf8' }).stdout.trim() === '');
    const arraySeconds = (performance.now() - t2) / 1000;
    const state = execFileSync('scontrol', ['show', 'job', merge, '-o'], { env, encoding: 'utf8' });
    const logs = () => spawnSync('sh', ['-c', `tail -n 5 ${dir}/logs/* ${s}/log/slurmd.log`], { encoding: 'utf8' }).stdout;
    assert.match(state, /JobState=COMPLETED/, `merge job: ${state}\n${logs()}`);
    assert.match(state, /ExitCode=0:0/);
    t.diagnostic(`one process: ${oneSeconds.toFixed(1)} s; ${SHARDS}-shard Slurm array + merge, submit to done: ${arraySeconds.toFixed(1)} s`);

    const merged = JSON.parse(readFileSync(mergeEnv.REPORT, 'utf8')) as Report;
    const one = JSON.parse(readFileSync(oneFile, 'utf8')) as Report;
    const strip = (rep: Report) => rep.layers.map((l) => ({ ...l, perImage: l.perImage.map((p) => ({ ...p, seconds: 0 })) }));
    assert.equal(merged.status, 'complete');
    assert.deepEqual(merged.shards, { count: SHARDS, missing: [] });
    assert.deepEqual(merged.images, one.images);
    assert.deepEqual(merged.settings, one.settings);
    assert.deepEqual(strip(merged), strip(one), 'maps, SIDs and every per-image number bitwise');
    assert.ok(existsSync(mergeEnv.HTML), 'the HTML page');
    assert.ok(new Set(merged.run!.processes.map((p) => p.pid)).size >= SHARDS, 'one process per array task');

    // The command lines Slurm ran are the ones the Kubernetes pods run.
    assert.deepEqual(logLines(log), k8sCommandLines());
  } finally {
    await stop();
  }
});
