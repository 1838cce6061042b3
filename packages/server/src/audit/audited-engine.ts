/**
 * Records every statement the server refuses with PERMISSION_DENIED, whichever route it came through
 * (WebSocket, HTTP, batch, and whatever is built on the engine later): the endpoints are handed this
 * view of the engine instead of the engine itself. Refusals come from two places, the statement guard
 * (internal tables, ATTACH, …) and the privilege check, and both surface through these calls.
 */
import type { StatementFailure, StatementResult } from '@rustydb/protocol';
import type { Caller, Engine, StatementInput } from '../engine/engine.ts';
import { RustyError } from '../errors/rusty-error.ts';
import type { AuditLog } from './audit-log.ts';
import { overrideEngine } from '../engine/engine-view.ts';

function refusalDetails(err: { message: string; details?: Record<string, unknown> | undefined }) {
  const details: Record<string, unknown> = { reason: err.message };
  if (err.details?.privilege !== undefined) details.privilege = err.details.privilege;
  if (err.details?.table !== undefined) details.table = err.details.table;
  return details;
}

export function auditedEngine(engine: Engine, audit: AuditLog): Engine {
  const report = (err: unknown, caller: Caller | undefined): void => {
    if (!(err instanceof RustyError) || err.code !== 'PERMISSION_DENIED') return;
    // Statements the server runs for itself (no caller) are not client requests.
    if (!caller) return;
    audit.record({
      event: 'permission.denied',
      user: caller.user,
      details: refusalDetails(err),
    });
  };
  const reportResults = (
    results: readonly (StatementResult | StatementFailure)[],
    caller: Caller | undefined,
  ): void => {
    for (const result of results) {
      if (result.status === 'error' && result.code === 'PERMISSION_DENIED') {
        report(new RustyError('PERMISSION_DENIED', result.message), caller);
      }
    }
  };

  const overrides: Partial<Engine> = {
    async *stream(statement: StatementInput, options) {
      try {
        yield* engine.stream(statement, options);
      } catch (err) {
        report(err, options.caller);
        throw err;
      }
    },
    async execute(statement, options) {
      try {
        return await engine.execute(statement, options);
      } catch (err) {
        report(err, options.caller);
        throw err;
      }
    },
    async batch(statements, options) {
      try {
        const results = await engine.batch(statements, options);
        reportResults(results, options.caller);
        return results;
      } catch (err) {
        report(err, options.caller);
        throw err;
      }
    },
  };
  const runInline = engine.runInline;
  if (typeof runInline === 'function') {
    overrides.runInline = (statement, caller) => {
      try {
        return runInline.call(engine, statement, caller);
      } catch (err) {
        report(err, caller);
        throw err;
      }
    };
  }
  const snapshot = (engine as Partial<Engine>).snapshot;
  if (typeof snapshot === 'function') {
    overrides.snapshot = async (statement, options) => {
      try {
        return await snapshot.call(engine, statement, options);
      } catch (err) {
        report(err, options.caller);
        throw err;
      }
    };
  }
  return overrideEngine(engine, overrides);
}
