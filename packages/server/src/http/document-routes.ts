/**
 * The document store over REST, under `/api/v1/documents/collections`:
 * `GET /` list, `POST /` create `{name}`, `GET /:name` info, `DELETE /:name` drop, and per collection
 * `POST /:name/find|insert|bulk-insert|update|delete|aggregate|count|indexes`.
 * The change stream of a collection is the WebSocket endpoint `/:name/watch`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DocumentService, CallContext } from '../documents/document-service.ts';
import { bearerPrincipal, clientGoneSignal, parseBody, type RestDeps } from './http-helpers.ts';

const BASE = '/api/v1/documents/collections';
const nameParams = z.object({ name: z.string().min(1).max(63) });
const createBody = z.object({ name: z.string().min(1).max(63) });
const findBody = z
  .object({
    filter: z.unknown(),
    projection: z.unknown(),
    sort: z.unknown(),
    limit: z.unknown(),
    skip: z.unknown(),
  })
  .partial()
  .default({});
const insertBody = z.object({ document: z.unknown() });
const bulkBody = z.object({ documents: z.unknown() });
const updateBody = z.object({
  filter: z.unknown().optional(),
  update: z.unknown(),
  upsert: z.boolean().optional(),
  multi: z.boolean().optional(),
});
const deleteBody = z.object({ filter: z.unknown().optional(), multi: z.boolean().optional() });
const aggregateBody = z.object({ pipeline: z.unknown() });
const countBody = z.object({ filter: z.unknown().optional() }).default({});
const indexBody = z.object({ field: z.string().min(1).max(200) });

export function registerDocumentRoutes(
  app: FastifyInstance,
  deps: RestDeps & { documents: DocumentService },
): void {
  const { documents, access, config } = deps;
  const principalOf = bearerPrincipal(deps);
  const context = async (request: FastifyRequest, reply: FastifyReply): Promise<CallContext> => ({
    caller: await access.callerFor(await principalOf(request)),
    timeoutMs: config.statement_timeout * 1000,
    signal: clientGoneSignal(request, reply, deps.logger),
  });
  const name = (request: FastifyRequest): string => parseBody(nameParams, request.params).name;

  app.get(BASE, async (request, reply) => {
    const { caller } = await context(request, reply);
    return { success: true, data: { collections: await documents.listCollections(caller) } };
  });

  app.post(BASE, async (request, reply) => {
    const ctx = await context(request, reply);
    const body = parseBody(createBody, request.body);
    const created = await documents.createCollection(body.name, ctx);
    return reply.code(created ? 201 : 200).send({ success: true, data: { name: body.name, created } });
  });

  app.get(`${BASE}/:name`, async (request, reply) => ({
    success: true,
    data: await documents.info(name(request), await context(request, reply)),
  }));

  app.delete(`${BASE}/:name`, async (request, reply) => {
    const ctx = await context(request, reply);
    await documents.dropCollection(name(request), ctx);
    return { success: true, data: { dropped: name(request) } };
  });

  app.post(`${BASE}/:name/find`, async (request, reply) => {
    const ctx = await context(request, reply);
    const docs = await documents.find(name(request), parseBody(findBody, request.body ?? {}), ctx);
    return { success: true, data: { documents: docs } };
  });

  app.post(`${BASE}/:name/insert`, async (request, reply) => {
    const ctx = await context(request, reply);
    const id = await documents.insert(name(request), parseBody(insertBody, request.body).document, ctx);
    return reply.code(201).send({ success: true, data: { inserted_id: id } });
  });

  app.post(`${BASE}/:name/bulk-insert`, async (request, reply) => {
    const ctx = await context(request, reply);
    const ids = await documents.insertMany(name(request), parseBody(bulkBody, request.body).documents, ctx);
    return reply.code(201).send({ success: true, data: { inserted_ids: ids, inserted_count: ids.length } });
  });

  app.post(`${BASE}/:name/update`, async (request, reply) => {
    const ctx = await context(request, reply);
    const result = await documents.update(name(request), parseBody(updateBody, request.body), ctx);
    return {
      success: true,
      data: {
        matched_count: result.matched,
        ...(result.upsertedId !== undefined ? { upserted_id: result.upsertedId } : {}),
      },
    };
  });

  app.post(`${BASE}/:name/delete`, async (request, reply) => {
    const ctx = await context(request, reply);
    const deleted = await documents.delete(name(request), parseBody(deleteBody, request.body), ctx);
    return { success: true, data: { deleted_count: deleted } };
  });

  app.post(`${BASE}/:name/aggregate`, async (request, reply) => {
    const ctx = await context(request, reply);
    const docs = await documents.aggregate(
      name(request),
      parseBody(aggregateBody, request.body).pipeline,
      ctx,
    );
    return { success: true, data: { documents: docs } };
  });

  app.post(`${BASE}/:name/count`, async (request, reply) => {
    const ctx = await context(request, reply);
    const count = await documents.count(name(request), parseBody(countBody, request.body ?? {}).filter, ctx);
    return { success: true, data: { count } };
  });

  app.post(`${BASE}/:name/indexes`, async (request, reply) => {
    const ctx = await context(request, reply);
    const index = await documents.createIndex(name(request), parseBody(indexBody, request.body).field, ctx);
    return reply.code(201).send({ success: true, data: { index } });
  });
}
