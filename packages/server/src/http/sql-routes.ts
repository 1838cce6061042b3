/** `POST /api/v1/query` and `POST /api/v1/batch`: the stream endpoint's engine over plain HTTP. */
import type { FastifyInstance } from 'fastify';
import { batchMessageSchema, queryMessageSchema } from '@rustydb/protocol';
import { RustyError } from '../errors/rusty-error.ts';
import { MAX_UNSTREAMED_ROWS } from '../core/stream-session.ts';
import { bearerPrincipal, clientGoneSignal, parseBody, type RestDeps } from './http-helpers.ts';

const queryBodySchema = queryMessageSchema.shape.payload;
const batchBodySchema = batchMessageSchema.shape.payload;

export function registerSqlRoutes(app: FastifyInstance, deps: RestDeps): void {
  const { engine, config, access } = deps;
  const principalOf = bearerPrincipal(deps);

  app.post('/api/v1/query', async (request, reply) => {
    const caller = await access.callerFor(await principalOf(request));
    const { sql, params } = parseBody(queryBodySchema, request.body);
    const options = {
      timeoutMs: config.statement_timeout * 1000,
      caller,
      signal: clientGoneSignal(request, reply, deps.logger),
      chunkSize: MAX_UNSTREAMED_ROWS + 1,
    };
    let result;
    for await (const chunk of engine.stream({ sql, params }, options)) {
      if (!chunk.done) {
        throw new RustyError(
          'QUERY_ERROR',
          `result has more than ${MAX_UNSTREAMED_ROWS} rows; stream it over /api/v1/stream`,
        );
      }
      result = {
        columns: chunk.columns,
        rows: chunk.rows,
        rows_affected: chunk.rowsAffected ?? chunk.rows.length,
        ...(chunk.lastInsertId !== undefined ? { last_insert_id: chunk.lastInsertId } : {}),
      };
    }
    return { success: true, data: result };
  });

  app.post('/api/v1/batch', async (request, reply) => {
    const caller = await access.callerFor(await principalOf(request));
    const { queries, transaction } = parseBody(batchBodySchema, request.body);
    const results = await engine.batch(queries, {
      caller,
      signal: clientGoneSignal(request, reply, deps.logger),
      timeoutMs: config.statement_timeout * 1000,
      transaction: transaction ?? false,
    });
    return { success: true, data: { results } };
  });
}
