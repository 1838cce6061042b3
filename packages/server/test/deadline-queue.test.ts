/**
 * The queue every session's token deadline shares one timer through: each deadline fires once, at
 * or after its time and never before, in order, however they are scheduled, moved and cancelled.
 */
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadline, DeadlineQueue } from '../src/core/deadline-queue.ts';

test('hundreds of deadlines, moved and cancelled at random, each fire once and never early', async () => {
  const fired: { owner: number; at: number; firedAt: number }[] = [];
  const queue = new DeadlineQueue<Deadline<number>>(({ owner }, at) =>
    fired.push({ owner, at, firedAt: Date.now() }),
  );
  // A fixed pseudo-random sequence, so that a failure can be replayed.
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const start = Date.now();
  const deadlines = Array.from({ length: 400 }, (_, i) => new Deadline(i));
  const expected = new Map<number, number>();
  for (const deadline of deadlines) {
    queue.schedule(deadline, start + 50 + random(400));
    expected.set(deadline.owner, deadline.at);
  }
  for (let i = 0; i < 300; i++) {
    const deadline = deadlines[random(deadlines.length)]!;
    if (random(3) === 0) {
      queue.cancel(deadline);
      expected.delete(deadline.owner);
    } else {
      queue.schedule(deadline, start + 50 + random(400));
      expected.set(deadline.owner, deadline.at);
    }
  }
  assert.equal(queue.size, expected.size);
  const deadline = Date.now() + 5000;
  while (fired.length < expected.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(fired.length, expected.size, 'every scheduled deadline fired, the cancelled ones did not');
  for (const { owner, at, firedAt } of fired) {
    assert.equal(at, expected.get(owner), `owner ${owner} fired for its last scheduled time`);
    assert.ok(firedAt >= at, `owner ${owner} fired ${at - firedAt} ms early`);
  }
  for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1]!.at <= fired[i]!.at, 'fired in order');
  assert.equal(new Set(fired.map((f) => f.owner)).size, fired.length, 'none fired twice');
  assert.equal(queue.size, 0);
});

test("a deadline beyond one timer's reach (2^31-1 ms) waits, and a nearer one still fires", async () => {
  const fired: string[] = [];
  const queue = new DeadlineQueue<Deadline<string>>(({ owner }) => fired.push(owner));
  const far = new Deadline('far');
  const near = new Deadline('near');
  queue.schedule(far, Date.now() + 30 * 86_400_000);
  queue.schedule(near, Date.now() + 20);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(fired, ['near']);
  assert.equal(queue.size, 1);
  queue.cancel(far);
  assert.equal(queue.size, 0);
});

test('an unref queue: a deadline cancelled last leaves its timer armed, and later and earlier ones still fire on time', async () => {
  const fired: { owner: string; at: number; firedAt: number }[] = [];
  const queue = new DeadlineQueue<Deadline<string>>(
    ({ owner }, at) => fired.push({ owner, at, firedAt: Date.now() }),
    {
      unref: true,
    },
  );
  const start = Date.now();
  const cancelled = new Deadline('cancelled');
  queue.schedule(cancelled, start + 60);
  queue.cancel(cancelled);
  assert.equal(queue.size, 0);
  // Earlier than the timer still armed for the cancelled one, then later than it.
  const early = new Deadline('early');
  const late = new Deadline('late');
  queue.schedule(early, start + 30);
  queue.schedule(late, start + 120);
  const until = Date.now() + 5000;
  while (fired.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    fired.map((f) => f.owner),
    ['early', 'late'],
  );
  for (const { at, firedAt } of fired) assert.ok(firedAt >= at, `fired at ${firedAt}, due at ${at}`);
  assert.equal(queue.size, 0);
});

test('an unref queue keeps no process alive: a process with only a distant deadline ends', async () => {
  const queueModule = new URL('../src/core/deadline-queue.ts', import.meta.url).href;
  const code =
    `const { Deadline, DeadlineQueue } = await import(${JSON.stringify(queueModule)});` +
    `const queue = new DeadlineQueue(() => process.exit(3), { unref: true });` +
    `queue.schedule(new Deadline('far'), Date.now() + 60000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: 'inherit',
  });
  const exit = await new Promise<number | null>((resolve) => {
    // Far below the deadline's 60 s, far above a busy machine's tsx start-up.
    const timer = setTimeout(() => {
      child.kill();
      resolve(-1);
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  assert.equal(exit, 0, 'the process ended on its own, without its deadline firing');
});
