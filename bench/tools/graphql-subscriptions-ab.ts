/**
 * Bench (f) between two builds of RustyDB: this tree's server and a baseline build, each with its 1,000
 * GraphQL subscribers connected (the bench's own clients, query and rounds), blocks of rounds in turns
 * (the order flips every turn), so that load from elsewhere on the machine falls on both. Prints, per
 * build, the server's CPU per event (over all blocks, and per block), round and write p50, events/s.
 * The peers are not run: this is for measuring a change to RustyDB before and after.
 *
 *   node --import tsx bench/tools/graphql-subscriptions-ab.ts --baseline PATH [--cpu-prof DIR] [turns]
 *
 * --cpu-prof DIR: both servers run with `node --cpu-prof`, their profiles written to DIR as they stop.
 *
 * PATH: the baseline's bin/rustydb.js, relative to the repository, e.g. a copy of the build made before
 * the change: `mkdir -p packages/server/.tmp/base && cp -r packages/server/bin packages/server/dist
 * packages/server/.tmp/base/` (then PATH is packages/server/.tmp/base/bin/rustydb.js).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { count, median, ms } from '../lib/stats.ts';
import { Session, WARMUP_ROUNDS, cpuPerEvent, rateOf, rustyTarget } from '../graphql-subscriptions.ts';
import { baselineOrExit, option } from '../lib/command-line.ts';

const baseline = baselineOrExit('usage: graphql-subscriptions-ab.ts --baseline PATH/bin/rustydb.js [turns]');
const profileOption = option('--cpu-prof');
const cpuProfileDir = profileOption !== undefined ? resolve(profileOption) : undefined;
const turns = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 8);
const builds = [
  { name: 'this tree', bin: undefined },
  { name: `baseline ${baseline}`, bin: baseline },
];
const log = (line: string): void => console.log(line);
const SUBSCRIBERS_TEXT = '1,000 subscribers';
const dataDirs: string[] = [];
const sessions: Session[] = [];
try {
  for (const build of builds) {
    const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-gql-ab-'));
    dataDirs.push(dataDir);
    const session = new Session(
      await rustyTarget({ dataDir, log, ...(cpuProfileDir ? { cpuProfileDir } : {}) }, build.bin),
    );
    sessions.push(session);
    await session.open(log);
  }
  for (const session of sessions) for (let i = 0; i < WARMUP_ROUNDS; i++) await session.runRound();
  for (let turn = 0; turn < turns; turn++) {
    for (const session of turn % 2 === 0 ? sessions : [...sessions].reverse()) await session.runBlock();
  }
  for (const session of sessions) await session.verify();
  sessions.forEach((session, i) => {
    const cpus = session.blocks.map((b) => (b.serverCpu / b.events) * 1e6);
    const mains = session.blocks.map((b) => (b.serverMainCpu / b.events) * 1e6);
    const events = session.blocks.reduce((n, b) => n + b.events, 0);
    const main = (session.blocks.reduce((t, b) => t + b.serverMainCpu, 0) / events) * 1e6;
    const perBlock = cpus.map((c) => c.toFixed(1)).join(' ');
    const rounds = session.blocks.flatMap((b) => b.rounds);
    log(
      `${builds[i]!.name}: server CPU per event ${cpuPerEvent(session, 'serverCpu').toFixed(2)} µs ` +
        `(blocks ${perBlock}; median ${median(cpus).toFixed(1)}), main thread ${main.toFixed(2)} µs ` +
        `(median of blocks ${median(mains).toFixed(2)}, range ${Math.min(...mains).toFixed(1)}–${Math.max(...mains).toFixed(1)}), round p50 ${ms(median(rounds))}, ` +
        `write p50 ${ms(median(session.blocks.flatMap((b) => b.writes)))}, ` +
        `events/s ${count(median(session.blocks.map(rateOf)))} (median of blocks); ` +
        `connecting ${SUBSCRIBERS_TEXT}: ${ms(session.connectMs)}, server CPU ${ms(session.connectCpu * 1000)}`,
    );
  });
} finally {
  for (const session of sessions) await session.close();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
}
