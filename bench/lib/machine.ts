/** Facts about the machine and the code under test, printed with every result. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg, release } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './children.ts';

export interface MachineFacts {
  date: string;
  nproc: string;
  totalMemory: string;
  cpuModel: string;
  node: string;
  kernel: string;
  libsql: string;
  ws: string;
  commit: string;
  /** 1-minute load average when the facts were taken: other work on the machine skews every figure. */
  load: number;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function packageVersion(name: string): string {
  try {
    const text = readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineFacts(): MachineFacts {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN);
  const dirty = run('git', ['status', '--porcelain']) === '' ? '' : ' (with uncommitted changes)';
  return {
    date: new Date().toISOString(),
    nproc: run('nproc', []),
    totalMemory: `${(memKb / (1024 * 1024)).toFixed(1)} GiB`,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    node: process.version,
    kernel: release(),
    libsql: packageVersion('libsql'),
    ws: packageVersion('ws'),
    commit: run('git', ['rev-parse', '--short', 'HEAD']) + dirty,
    load: loadavg()[0]!,
  };
}
