/**
 * `POST /api/v1/admin/backup` (ADMIN): a consistent copy of the whole database, taken while the server
 * runs and writers go on, sent back as one SQLite file. `rustydb backup --to FILE` calls it; operations.md
 * says what a backup holds and how `rustydb restore` brings it back.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { bearerPrincipal, requestContext, type RestDeps } from './http-helpers.ts';

export interface BackupRouteDeps extends RestDeps {
  audit?: AuditLog;
}

/** The header carrying the change-log position the backup holds. */
export const BACKUP_SEQUENCE_HEADER = 'x-rustydb-sequence';

export function registerBackupRoutes(app: FastifyInstance, deps: BackupRouteDeps): void {
  const principalOf = bearerPrincipal(deps);
  app.post('/api/v1/admin/backup', async (request, reply) => {
    const admin = await principalOf(request);
    await deps.access.requireGlobal(admin, 'ADMIN');
    const { engine } = deps;
    if (!engine.backup) {
      throw new RustyError(
        'INVALID_MESSAGE',
        `the ${engine.name} engine keeps its data in the database server: back it up with that database's own tools (pg_dump)`,
      );
    }
    // Written beside the database (same filesystem, same permissions), sent, then deleted.
    const file = join(deps.config.data_dir, `backup-${randomUUID()}.partial`);
    try {
      const { sequence } = await engine.backup(file);
      const bytes = statSync(file).size;
      deps.audit?.record({
        event: 'backup.create',
        actor: admin.user,
        ...requestContext(request),
        details: { sequence, bytes },
      });
      const stream = createReadStream(file);
      stream.once('close', () => rmSync(file, { force: true }));
      const name = `rustydb-${new Date().toISOString().replaceAll(':', '-')}.sqlite`;
      return reply
        .header('content-type', 'application/vnd.sqlite3')
        .header('content-length', bytes)
        .header('content-disposition', `attachment; filename="${name}"`)
        .header(BACKUP_SEQUENCE_HEADER, String(sequence))
        .send(stream);
    } catch (err) {
      rmSync(file, { force: true });
      throw err;
    }
  });
}
