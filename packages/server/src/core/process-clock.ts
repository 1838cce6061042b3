/**
 * Times kept per connection, as milliseconds since this process started.
 *
 * An epoch millisecond count (about 2^40) is no small integer to V8: a field holding one points to a
 * number object of its own, 16 bytes more per field per connection. Counted from the start of the
 * process, the same times stay small integers, stored in the object itself, for the first 24 days of
 * uptime; later ones are stored like epoch times were, and every value stays exact either way.
 */
const START = Date.now();

/** Now, in milliseconds since the process started. */
export function sinceStart(): number {
  const time = Date.now() - START;
  // A difference of two numbers beyond 2^31 comes out as a number object even when it is small:
  // `| 0` gives it V8's small-integer form (exact below 2^31, which it is checked to be).
  return time < 2 ** 31 ? time | 0 : time;
}

/** Epoch milliseconds of a `sinceStart()` time. */
export function epochOf(time: number): number {
  return START + time;
}
