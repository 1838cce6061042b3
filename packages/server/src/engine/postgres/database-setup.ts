/**
 * What RustyDB keeps in the PostgreSQL database besides the users' tables, created on start (safely
 * when several nodes start at once: one transaction under a lock does it):
 *
 * - schema `rustydb`: the server's own tables. Nobody but the login role has USAGE on it, so no
 *   statement a client sends can read or even name its contents, whatever role it runs under;
 * - schema `rustydb_api`: the functions statements of clients may call (`after_ddl`), SECURITY DEFINER
 *   with a fixed search_path;
 * - roles (all NOLOGIN unless said, names prefixed `rdb<database oid>_` so two databases in one cluster
 *   never share one): one per RustyDB role (`…_r_<name>`) holding its grants; `…_tables`, which owns
 *   every user table (ALTER and DROP are table ownership in PostgreSQL); `…_user`, the group of every
 *   session role; and session roles (`…_s_<hash>`, LOGIN) for each set of RustyDB roles a user holds,
 *   members of exactly those roles: statements of clients run on connections logged in as them;
 * - the public schema's CREATE and the database's TEMPORARY privileges are taken from PUBLIC: a
 *   temporary object on a shared connection would reach the next statement of another user.
 */

import { CHANGES_CHANNEL, TICK_PREFIX } from './change-capture.ts';
import { NODE_EVENTS_CHANNEL } from './node-events.ts';

/** Everything the server's own tables need in place; run as the login role, in one transaction. */
export function setupSql(prefix: string): string {
  const role = (suffix: string): string => `"${prefix}${suffix}"`;
  return `
CREATE SCHEMA IF NOT EXISTS rustydb;
-- Grants and revokes on the same object in two transactions at once fail ("tuple concurrently
-- updated"): this set-up waits for a privileges sync of a node already running, as syncs and session
-- roles wait for each other (they take the same lock). The first node up has no grants table yet.
DO $setup$
BEGIN
  IF to_regclass('rustydb._rustydb_grants') IS NOT NULL THEN
    LOCK TABLE rustydb._rustydb_grants IN SHARE ROW EXCLUSIVE MODE;
  END IF;
END
$setup$;
REVOKE ALL ON SCHEMA rustydb FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS rustydb_api;
REVOKE ALL ON SCHEMA rustydb_api FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $setup$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${prefix}tables') THEN
    CREATE ROLE ${role('tables')} NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${prefix}user') THEN
    CREATE ROLE ${role('user')} NOLOGIN;
  END IF;
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$setup$;
GRANT ${role('tables')} TO CURRENT_USER;
GRANT CREATE, USAGE ON SCHEMA public TO ${role('tables')};
GRANT USAGE ON SCHEMA rustydb_api TO ${role('user')};
CREATE TABLE IF NOT EXISTS rustydb.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Change capture (see change-capture.ts): the numbered log, the reader's position, and the schema
-- changes after_ddl() records (published, so they arrive in commit order with the rows).
CREATE TABLE IF NOT EXISTS rustydb.changes (
  seq bigint PRIMARY KEY,
  xid bigint NOT NULL,
  tbl text NOT NULL,
  op text NOT NULL,
  pk text,
  old_row text,
  new_row text,
  ts bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_ts ON rustydb.changes (ts);
CREATE INDEX IF NOT EXISTS changes_xid ON rustydb.changes (xid);
-- Schema changes by table (incarnation(): where a table's latest creation is).
CREATE INDEX IF NOT EXISTS changes_ddl ON rustydb.changes (tbl, seq) WHERE op = 'ddl';
CREATE TABLE IF NOT EXISTS rustydb.capture (
  id int PRIMARY KEY CHECK (id = 1),
  head bigint NOT NULL,
  floor bigint NOT NULL,
  applied_lsn pg_lsn NOT NULL
);
INSERT INTO rustydb.capture VALUES (1, 0, 0, '0/0') ON CONFLICT (id) DO NOTHING;
-- Written only for the WAL: capture_schema() deletes each row in the transaction that inserted it, and
-- the capture decodes the insert. The table is always empty; earlier versions left a row per schema
-- change (their apply deleted it, and missed it when it was decoded before its commit was visible), and
-- those are deleted here. Deleting any row is safe at any time: the capture reads the inserts from the
-- WAL, never the table, and takes no notice of deletes.
CREATE TABLE IF NOT EXISTS rustydb.schema_events (
  id bigserial PRIMARY KEY,
  tbl text NOT NULL,
  action text NOT NULL,
  sql text
);
DELETE FROM rustydb.schema_events;
-- Numbers and stores what the capture decoded (change-capture.ts), in one statement and so in one
-- round trip: under the capture row's lock, the records of transactions that end after applied_lsn get
-- the sequences after head; head and applied_lsn move; the feeds are woken at commit. Records of
-- transactions at or before applied_lsn were applied already (by this node before a reconnect, or by
-- another that held the slot) and are skipped. xids are pgoutput's 32-bit ones, widened to 64 bits
-- against this transaction's own id, assigned after every decoded transaction was assigned its own: the
-- epoch is this one's or the one before. (Not the snapshot's xmax: a decoded transaction may still be in
-- the proc array, between its WAL flush and becoming visible, and then its id is at or above the xmax
-- of snapshots taken now. For the same reason nothing here may count on seeing the rows a decoded
-- transaction wrote: schema events are deleted by their own transaction, see rustydb.schema_events.)
-- Returns the new head. (Earlier versions had an overload that also took the schema events' ids to
-- delete; it is left for their nodes while a cluster is upgraded one node at a time.)
CREATE OR REPLACE FUNCTION rustydb.apply_changes(ends pg_lsn[], xids bigint[], tss bigint[], tbls text[],
  ops text[], pks text[], olds text[], news text[], through pg_lsn)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  state rustydb.capture%ROWTYPE;
  own_xid bigint;
  epoch bigint;
  added bigint;
BEGIN
  SELECT * INTO state FROM rustydb.capture WHERE id = 1 FOR UPDATE;
  own_xid := pg_current_xact_id()::text::bigint;
  epoch := (own_xid >> 32) << 32;
  INSERT INTO rustydb.changes (seq, xid, tbl, op, pk, old_row, new_row, ts)
  SELECT state.head + row_number() OVER (ORDER BY r.n),
         CASE WHEN (epoch | r.xid) >= own_xid THEN (epoch | r.xid) - 4294967296 ELSE epoch | r.xid END,
         r.tbl, r.op, r.pk, r.old_row, r.new_row, r.ts
    FROM unnest(ends, xids, tbls, ops, pks, olds, news, tss)
           WITH ORDINALITY AS r(end_lsn, xid, tbl, op, pk, old_row, new_row, ts, n)
   WHERE r.end_lsn > state.applied_lsn;
  GET DIAGNOSTICS added = ROW_COUNT;
  UPDATE rustydb.capture SET head = state.head + added, applied_lsn = greatest(applied_lsn, through)
   WHERE id = 1;
  PERFORM pg_notify('${CHANGES_CHANNEL}', (state.head + added)::text);
  RETURN state.head + added;
END
$fn$;
REVOKE ALL ON FUNCTION rustydb.apply_changes(pg_lsn[], bigint[], bigint[], text[], text[], text[], text[],
  text[], pg_lsn) FROM PUBLIC;
-- The capture's applied position, and when it is before "wanted" a tick, in one statement (see
-- PgChangeLog's waitForApplied): a logical message in this transaction, committed with a WAL flush (the
-- walsender sends only flushed WAL, and with synchronous_commit off a commit waits for the WAL writer),
-- which the capture applies even when nothing else is written. "local", not "on": the flush is all
-- it needs, and with synchronous standbys configured "on" would also wait for them. (SET LOCAL
-- outlives the function: its SET clause names search_path only.) Returns the position read.
CREATE OR REPLACE FUNCTION rustydb.applied_or_tick(wanted pg_lsn) RETURNS pg_lsn
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  applied pg_lsn;
BEGIN
  SELECT applied_lsn INTO applied FROM rustydb.capture WHERE id = 1;
  IF applied < wanted THEN
    PERFORM set_config('synchronous_commit', 'local', true);
    PERFORM pg_logical_emit_message(true, '${TICK_PREFIX}', '');
  END IF;
  RETURN applied;
END
$fn$;
REVOKE ALL ON FUNCTION rustydb.applied_or_tick(pg_lsn) FROM PUBLIC;
-- Events between the nodes sharing the database (node-events.ts): revocations, privilege changes.
CREATE TABLE IF NOT EXISTS rustydb.node_events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  body text NOT NULL
);
-- Held by a starting node while it makes the server's tables, the first admin and the secret
-- (PostgresEngine.exclusively). A table lock, not an advisory one: clients can take any advisory lock.
-- (rustydb.setup_lock, which serializes this very set-up and migrations, is made before it runs.)
CREATE TABLE IF NOT EXISTS rustydb.startup_lock ();
-- Records an event for the other nodes and wakes them (node-events.ts). The lock makes ids visible in
-- their order: a reader that moved past an id never misses a lower one committed later.
CREATE OR REPLACE FUNCTION rustydb.publish_node_event(body text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  LOCK TABLE rustydb.node_events IN EXCLUSIVE MODE;
  INSERT INTO rustydb.node_events (body) VALUES (body);
  PERFORM pg_notify('${NODE_EVENTS_CHANNEL}', '');
END
$fn$;
REVOKE ALL ON FUNCTION rustydb.publish_node_event(text) FROM PUBLIC;
-- The tables and views of the public schema as after_ddl() last saw them.
CREATE TABLE IF NOT EXISTS rustydb.objects (name text PRIMARY KEY, oid oid NOT NULL, definition text NOT NULL);
DO $setup$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'rustydb_capture') THEN
    CREATE PUBLICATION rustydb_capture;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_publication_tables WHERE pubname = 'rustydb_capture'
                   AND schemaname = 'rustydb' AND tablename = 'schema_events') THEN
    ALTER PUBLICATION rustydb_capture ADD TABLE rustydb.schema_events;
  END IF;
END
$setup$;

-- Publishes every user table (with whole old rows: REPLICA IDENTITY FULL) and records what changed in
-- the schema since the last call as rows of rustydb.schema_events. A table whose oid changed was
-- dropped and made again: both are recorded, so subscribers of the old one are ended. The rows are
-- deleted again before the end: the capture needs only their inserts in the WAL, and nothing that
-- runs after the commit can count on seeing them (the capture may apply a transaction a moment before
-- its commit is visible, and would leave them behind).
CREATE OR REPLACE FUNCTION rustydb_api.capture_schema() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t record;
  recorded bigint[] := '{}';
  event bigint;
BEGIN
  LOCK TABLE rustydb.objects IN EXCLUSIVE MODE;
  FOR t IN SELECT c.relname, c.relreplident, c.relkind, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relpersistence = 'p'
        AND (c.relreplident <> 'f' OR NOT EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                         WHERE p.pubname = 'rustydb_capture' AND pr.prrelid = c.oid)) LOOP
    IF t.relreplident <> 'f' THEN
      EXECUTE format('ALTER TABLE public.%I REPLICA IDENTITY FULL', t.relname);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
                    WHERE p.pubname = 'rustydb_capture' AND pr.prrelid = t.oid) THEN
      EXECUTE format('ALTER PUBLICATION rustydb_capture ADD TABLE public.%I', t.relname);
    END IF;
  END LOOP;
  FOR t IN
    WITH now_defined AS (
      SELECT c.relname AS name, c.oid, CASE WHEN c.relkind IN ('v', 'm')
          THEN format('CREATE VIEW %I AS %s', c.relname, pg_get_viewdef(c.oid))
          ELSE format('CREATE TABLE %I (%s)', c.relname, concat_ws(', ',
            (SELECT string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                      CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
            (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')))
        END AS definition
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))
    SELECT coalesce(d.name, o.name) AS name, d.oid, d.definition,
           CASE WHEN o.name IS NULL THEN 'create' WHEN d.name IS NULL THEN 'drop'
                WHEN o.oid <> d.oid THEN 'replace' ELSE 'alter' END AS action
      FROM now_defined d FULL JOIN rustydb.objects o ON o.name = d.name
     WHERE d.definition IS DISTINCT FROM o.definition OR d.oid IS DISTINCT FROM o.oid
     ORDER BY 1
  LOOP
    IF t.action IN ('drop', 'replace') THEN
      INSERT INTO rustydb.schema_events (tbl, action, sql) VALUES (t.name, 'drop', NULL) RETURNING id INTO event;
      recorded := recorded || event;
      DELETE FROM rustydb.objects WHERE name = t.name;
    END IF;
    IF t.action <> 'drop' THEN
      INSERT INTO rustydb.schema_events (tbl, action, sql)
        VALUES (t.name, CASE t.action WHEN 'alter' THEN 'alter' ELSE 'create' END, t.definition)
        RETURNING id INTO event;
      recorded := recorded || event;
      INSERT INTO rustydb.objects (name, oid, definition) VALUES (t.name, t.oid, t.definition)
        ON CONFLICT (name) DO UPDATE SET oid = excluded.oid, definition = excluded.definition;
    END IF;
  END LOOP;
  IF cardinality(recorded) > 0 THEN
    DELETE FROM rustydb.schema_events WHERE id = ANY (recorded);
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.capture_schema() FROM PUBLIC;

-- The PostgreSQL role of a RustyDB role.
CREATE OR REPLACE FUNCTION rustydb_api.role_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT '${prefix}r_' || CASE WHEN length(name) <= 40 THEN name
    ELSE left(name, 24) || '_' || left(encode(sha256(convert_to(name, 'UTF8')), 'hex'), 12) END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.role_name(text) FROM PUBLIC;

-- Makes PostgreSQL's privileges what RustyDB's roles and grants say: a role per RustyDB role, table
-- privileges by name ('*' for every table), CREATE on the public schema, ALTER/DROP as membership in
-- the role that owns every table. Grants made in SQL by a table owner to anyone else are taken back.
CREATE OR REPLACE FUNCTION rustydb_api.sync_privileges() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r record;
  t record;
  g record;
  rn text;
  want text[];
  have text[];
  owner_oid oid := (SELECT oid FROM pg_roles WHERE rolname = '${prefix}tables');
BEGIN
  -- One sync at a time, across every node.
  LOCK TABLE rustydb._rustydb_grants IN SHARE ROW EXCLUSIVE MODE;
  FOR r IN SELECT name, rustydb_api.role_name(name) AS pg FROM rustydb._rustydb_roles LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.pg) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r.pg);
      EXECUTE format('GRANT %I TO CURRENT_USER', r.pg);
    END IF;
  END LOOP;
  -- Roles of RustyDB roles that no longer exist.
  FOR r IN SELECT rolname FROM pg_roles
      WHERE rolname LIKE '${prefix.replaceAll('_', '\\_')}r\\_%'
        AND rolname NOT IN (SELECT rustydb_api.role_name(name) FROM rustydb._rustydb_roles) LOOP
    EXECUTE format('DROP OWNED BY %I', r.rolname);
    EXECUTE format('DROP ROLE %I', r.rolname);
  END LOOP;
  FOR r IN SELECT name, rustydb_api.role_name(name) AS pg,
      EXISTS (SELECT FROM rustydb._rustydb_grants x WHERE x.role = name AND x.privilege IN ('ADMIN', 'CREATE')) AS creates,
      EXISTS (SELECT FROM rustydb._rustydb_grants x WHERE x.role = name AND x.privilege IN ('ADMIN', 'ALTER', 'DROP')) AS owns,
      EXISTS (SELECT FROM rustydb._rustydb_grants x WHERE x.role = name AND x.privilege IN ('ADMIN', 'INSERT')) AS inserts
    FROM rustydb._rustydb_roles LOOP
    IF r.creates <> has_schema_privilege(r.pg, 'public', 'CREATE') THEN
      EXECUTE format(CASE WHEN r.creates THEN 'GRANT CREATE ON SCHEMA public TO %I' ELSE 'REVOKE CREATE ON SCHEMA public FROM %I' END, r.pg);
    END IF;
    IF r.owns <> EXISTS (SELECT FROM pg_auth_members WHERE roleid = owner_oid AND member = (SELECT oid FROM pg_roles WHERE rolname = r.pg)) THEN
      EXECUTE format(CASE WHEN r.owns THEN 'GRANT %I TO %I' ELSE 'REVOKE %I FROM %I' END, '${prefix}tables', r.pg);
    END IF;
    FOR t IN SELECT c.relname, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'S' LOOP
      IF r.inserts <> EXISTS (SELECT FROM aclexplode(t.relacl) a WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = r.pg)) THEN
        EXECUTE format(CASE WHEN r.inserts THEN 'GRANT USAGE ON SEQUENCE public.%I TO %I' ELSE 'REVOKE ALL ON SEQUENCE public.%I FROM %I' END, t.relname, r.pg);
      END IF;
    END LOOP;
  END LOOP;
  FOR t IN SELECT c.relname, c.relacl, c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
    -- Anyone the owner granted something to in SQL who is not a RustyDB role: taken back.
    FOR g IN SELECT DISTINCT a.grantee FROM aclexplode(t.relacl) a
        WHERE a.grantee <> t.relowner
          AND NOT EXISTS (SELECT FROM rustydb._rustydb_roles x WHERE (SELECT oid FROM pg_roles WHERE rolname = rustydb_api.role_name(x.name)) = a.grantee) LOOP
      EXECUTE format('REVOKE ALL ON TABLE public.%I FROM %s', t.relname,
        CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident((SELECT rolname FROM pg_roles WHERE oid = g.grantee)) END);
    END LOOP;
    FOR r IN SELECT name, rustydb_api.role_name(name) AS pg FROM rustydb._rustydb_roles LOOP
      want := ARRAY(SELECT DISTINCT gr.privilege FROM rustydb._rustydb_grants gr
        WHERE gr.role = r.name AND gr.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
          AND (gr.table_name = '*' OR gr.table_name = lower(t.relname)) ORDER BY 1);
      have := ARRAY(SELECT DISTINCT a.privilege_type FROM aclexplode(t.relacl) a
        WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = r.pg) ORDER BY 1);
      IF want IS DISTINCT FROM have THEN
        EXECUTE format('REVOKE ALL ON TABLE public.%I FROM %I', t.relname, r.pg);
        IF cardinality(want) > 0 THEN
          EXECUTE format('GRANT %s ON TABLE public.%I TO %I', array_to_string(want, ', '), t.relname, r.pg);
        END IF;
      END IF;
    END LOOP;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.sync_privileges() FROM PUBLIC;

-- Run in the transaction of every statement that may have changed the schema: tables, views and
-- sequences a client created are handed to the role that owns every table (ALTER and DROP are
-- ownership in PostgreSQL), views check the caller's privileges rather than their owner's, and the
-- privileges of the new objects are set from RustyDB's grants. Functions stay with their creator.
CREATE OR REPLACE FUNCTION rustydb_api.after_ddl() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = '${prefix}tables') LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO %I', t.relname, '${prefix}tables');
    IF t.relkind = 'v' THEN
      EXECUTE format('ALTER VIEW public.%I SET (security_invoker = true)', t.relname);
    END IF;
  END LOOP;
  PERFORM rustydb_api.sync_privileges();
  PERFORM rustydb_api.capture_schema();
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.after_ddl() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rustydb_api.after_ddl() TO ${role('user')};

${documentFunctionsSql(role('user'))}

-- The login role for one set of RustyDB roles, created on first use: a member of exactly those roles.
CREATE OR REPLACE FUNCTION rustydb_api.session_role(roles text[], password text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  sorted text[] := ARRAY(SELECT DISTINCT x FROM unnest(roles) AS x ORDER BY 1);
  name text := '${prefix}s_' || left(encode(sha256(convert_to(array_to_string(sorted, E'\\n'), 'UTF8')), 'hex'), 24);
  role_name text;
BEGIN
  -- Two nodes making the same role at once, or granting while a sync grants: one waits.
  LOCK TABLE rustydb._rustydb_grants IN SHARE ROW EXCLUSIVE MODE;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
    EXECUTE format('CREATE ROLE %I LOGIN INHERIT PASSWORD %L IN ROLE %I', name, password, '${prefix}user');
    EXECUTE format('GRANT %I TO CURRENT_USER', name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', name);
  END IF;
  FOREACH role_name IN ARRAY sorted LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = rustydb_api.role_name(role_name))
       AND NOT pg_has_role(name, rustydb_api.role_name(role_name), 'MEMBER') THEN
      EXECUTE format('GRANT %I TO %I', rustydb_api.role_name(role_name), name);
    END IF;
  END LOOP;
  RETURN name;
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.session_role(text[], text) FROM PUBLIC;
`;
}

/**
 * The functions compiled document updates call (documents/postgres-dialect.ts), executable by
 * `grantee`. document_set is jsonb_set that also creates the missing objects along the path, as
 * SQLite's json_set does (the update's guards have refused paths through anything but objects).
 * document_failure stops an update the data makes impossible ($inc on a string); VOLATILE, so the
 * planner never evaluates it ahead of the CASE branch that calls it.
 */
export function documentFunctionsSql(grantee: string): string {
  return `CREATE OR REPLACE FUNCTION rustydb_api.document_set(doc jsonb, path text[], value jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  FOR i IN 1 .. coalesce(array_length(path, 1), 0) - 1 LOOP
    IF doc #> path[1:i] IS NULL THEN
      doc := jsonb_set(doc, path[1:i], '{}'::jsonb);
    END IF;
  END LOOP;
  RETURN jsonb_set(doc, path, value);
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.document_set(jsonb, text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rustydb_api.document_set(jsonb, text[], jsonb) TO ${grantee};
CREATE OR REPLACE FUNCTION rustydb_api.document_failure(message text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  RAISE EXCEPTION USING MESSAGE = 'rustydb: ' || message, ERRCODE = 'P0001';
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.document_failure(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rustydb_api.document_failure(text) TO ${grantee};
${compensatedSumSql(grantee)}`;
}

/**
 * rustydb_api.document_fsum(float8): the sum of doubles SQLite's SUM and AVG compute (since 3.43), with
 * Kahan-Babuska-Neumaier compensation, for aggregation pipelines (documents/postgres-group.ts). The
 * state is {sum, compensation}; a sum past the largest double becomes infinite, as in C, instead of
 * failing as float8 addition does. The step runs once per document, so it has no SET search_path
 * (which costs more than the step itself): every name in it is qualified with pg_catalog instead,
 * and it runs with the caller's rights. Only the aggregate is granted; its functions run as its owner.
 */
function compensatedSumSql(grantee: string): string {
  const op = (o: string) => `OPERATOR(pg_catalog.${o})`;
  const f8 = 'pg_catalog.float8';
  const largest = `1.7976931348623157e308::${f8}`;
  return `CREATE OR REPLACE FUNCTION rustydb_api.document_fsum_step(state ${f8}[], x ${f8}) RETURNS ${f8}[]
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  s ${f8} := state[1];
  t ${f8};
BEGIN
  IF pg_catalog.sign(s) ${op('=')} pg_catalog.sign(x) AND pg_catalog.abs(s) ${op('>')} (${largest} ${op('-')} pg_catalog.abs(x)) THEN
    t := 'Infinity'::${f8} ${op('*')} pg_catalog.sign(x);
  ELSE
    t := s ${op('+')} x;
  END IF;
  IF pg_catalog.abs(s) ${op('>')} pg_catalog.abs(x) THEN
    RETURN ARRAY[t, state[2] ${op('+')} ((s ${op('-')} t) ${op('+')} x)];
  END IF;
  RETURN ARRAY[t, state[2] ${op('+')} ((x ${op('-')} t) ${op('+')} s)];
END
$fn$;
CREATE OR REPLACE FUNCTION rustydb_api.document_fsum_final(state ${f8}[]) RETURNS ${f8}
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
BEGIN
  -- An infinite or undefined compensation is left out, as SQLite leaves it (NaN is above every float8).
  IF NOT pg_catalog.abs(state[2]) ${op('<=')} ${largest} THEN
    RETURN state[1];
  END IF;
  IF pg_catalog.sign(state[1]) ${op('=')} pg_catalog.sign(state[2])
     AND pg_catalog.abs(state[1]) ${op('>')} (${largest} ${op('-')} pg_catalog.abs(state[2])) THEN
    RETURN 'Infinity'::${f8} ${op('*')} pg_catalog.sign(state[1]);
  END IF;
  RETURN state[1] ${op('+')} state[2];
END
$fn$;
REVOKE ALL ON FUNCTION rustydb_api.document_fsum_step(${f8}[], ${f8}) FROM PUBLIC;
REVOKE ALL ON FUNCTION rustydb_api.document_fsum_final(${f8}[]) FROM PUBLIC;
CREATE OR REPLACE AGGREGATE rustydb_api.document_fsum(${f8}) (
  SFUNC = rustydb_api.document_fsum_step, STYPE = ${f8}[], FINALFUNC = rustydb_api.document_fsum_final,
  INITCOND = '{0,0}'
);
REVOKE ALL ON FUNCTION rustydb_api.document_fsum(${f8}) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rustydb_api.document_fsum(${f8}) TO ${grantee};
`;
}
