/**
 * DeliveryScheduler (changes/delivery-scheduler.ts): when passes are spaced and when they are not. The
 * orderings checked here do not depend on the machine's speed: a pass started with setImmediate always
 * runs before a timer set at the same moment, a spaced one (setTimeout for the gap) never does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../src/engine/engine.ts';
import { DeliveryScheduler, type DeliveryTarget } from '../src/changes/delivery-scheduler.ts';

const record = (seq: number): ChangeRecord => ({
  seq,
  table: 't',
  op: 'update',
  key: { id: seq },
  old: { id: seq, v: 0 },
  new: { id: seq, v: 1 },
  ts: 0,
});

/** A pass's work, long enough that the gap after it (3× the work, at most 25 ms) would be 25 ms. */
const PASS_WORK_MS = 12;

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** A target that takes PASS_WORK_MS per pass and records what each pass gave it. */
function slowTarget(onOffer?: (seqs: number[]) => void): { target: DeliveryTarget; passes: number[][] } {
  const passes: number[][] = [];
  const target: DeliveryTarget = {
    offer(records) {
      busy(PASS_WORK_MS);
      const seqs = records.map((r) => r.seq);
      passes.push(seqs);
      onOffer?.(seqs);
      return true;
    },
  };
  return { target, passes };
}

const nextPass = (passes: number[][], count: number): Promise<void> =>
  new Promise((resolve) => {
    const look = (): void => void (passes.length >= count ? resolve() : setImmediate(look));
    look();
  });

test('a change that arrives after a pass has delivered everything goes out at once, not after a gap', async () => {
  const { target, passes } = slowTarget();
  const scheduler = new DeliveryScheduler((records) => ({ targets: [target], recordsFor: () => records }));
  try {
    void scheduler.push([record(1)]);
    await nextPass(passes, 1);
    // Nothing came in while that pass ran: the server is not behind, so the next change is not held
    // back for the pass's gap (which would be 25 ms here).
    let timerFired = false;
    const timer = setTimeout(() => (timerFired = true), 20);
    void scheduler.push([record(2)]);
    await nextPass(passes, 2);
    clearTimeout(timer);
    assert.equal(timerFired, false, 'the second pass waited for a gap');
    assert.deepEqual(passes, [[1], [2]]);
  } finally {
    scheduler.close();
  }
});

test('changes that arrive while a pass runs are spaced after it and go out together', async () => {
  const { target, passes } = slowTarget((seqs) => {
    // Commits keep coming while the first pass delivers: delivery is behind a stream of changes.
    if (seqs[0] === 1) for (let seq = 2; seq <= 4; seq++) void scheduler.push([record(seq)]);
  });
  const scheduler = new DeliveryScheduler((records) => ({ targets: [target], recordsFor: () => records }));
  try {
    void scheduler.push([record(1)]);
    await nextPass(passes, 1);
    let timerFired = false;
    const timer = setTimeout(() => (timerFired = true), 1);
    await nextPass(passes, 2);
    clearTimeout(timer);
    assert.equal(
      timerFired,
      true,
      'the pass after a backlog is spaced (a timer set after the first pass ran first)',
    );
    assert.deepEqual(passes, [[1], [2, 3, 4]]);
  } finally {
    scheduler.close();
  }
});
