/**
 * Administration (ADMIN): users, roles and grants (create, change, revoke: the server applies them
 * to open sessions at once), the open sessions and subscriptions with their figures and a button to
 * end each, and the audit log with filters. Everything goes through the HTTP admin API.
 */
import { useEffect, useState } from 'preact/hooks';
import type { PageProps } from '../app.tsx';
import { RecordTable } from '../components/record-table.tsx';
import type { Grant } from '../lib/access.ts';
import { ErrorBox } from '../lib/errors.tsx';
import { formatCount } from '../lib/format.ts';
import { href } from '../lib/router.ts';
import type { Session } from '../lib/session.ts';

const TABS = [
  ['users', 'Users'],
  ['roles', 'Roles and grants'],
  ['sessions', 'Sessions'],
  ['subscriptions', 'Subscriptions'],
  ['audit', 'Audit log'],
] as const;

const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'ALTER', 'DROP', 'MONITOR', 'ADMIN'];
const TABLE_PRIVILEGES = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE']);

interface User {
  username: string;
  roles: string[];
  disabled: boolean;
}
interface Role {
  name: string;
  description: string;
  builtin: boolean;
  grants: Grant[];
}

/** Loads `path` and reloads it when `version` changes; errors are kept for the page. */
function useApi<T>(session: Session, path: string, version: number): { data: T | undefined; error: unknown } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown }>({
    data: undefined,
    error: undefined,
  });
  useEffect(() => {
    let live = true;
    session.client.request<T>(path).then(
      (data) => live && setState({ data, error: undefined }),
      (error: unknown) => live && setState((s) => ({ data: s.data, error })),
    );
    return () => {
      live = false;
    };
  }, [path, version]);
  return state;
}

/** Runs an admin action, then reloads; the server's refusal is shown. */
function useAction(session: Session): {
  run: (method: string, path: string, body?: unknown) => Promise<boolean>;
  error: unknown;
  version: number;
  reload: () => void;
} {
  const [error, setError] = useState<unknown>();
  const [version, setVersion] = useState(0);
  return {
    error,
    version,
    reload: () => setVersion((v) => v + 1),
    run: async (method, path, body) => {
      setError(undefined);
      try {
        await session.client.request(path, { method, ...(body === undefined ? {} : { body }) });
        setVersion((v) => v + 1);
        return true;
      } catch (err) {
        setError(err);
        return false;
      }
    },
  };
}

export default function AdminPage({ session, route }: PageProps) {
  const tab = TABS.find(([id]) => id === route.arg)?.[0] ?? 'users';
  return (
    <div class="page-fill">
      <h1>Administration</h1>
      <nav class="tabs" aria-label="Administration sections">
        {TABS.map(([id, title]) => (
          <a
            key={id}
            class="tab-link"
            href={href('admin', id)}
            aria-current={id === tab ? 'page' : undefined}
          >
            {title}
          </a>
        ))}
      </nav>
      {tab === 'users' ? <UsersTab session={session} /> : null}
      {tab === 'roles' ? <RolesTab session={session} /> : null}
      {tab === 'sessions' ? <SessionsTab session={session} /> : null}
      {tab === 'subscriptions' ? <SubscriptionsTab session={session} /> : null}
      {tab === 'audit' ? <AuditTab session={session} /> : null}
    </div>
  );
}

function UsersTab({ session }: { session: Session }) {
  const action = useAction(session);
  const users = useApi<{ users: User[] }>(session, '/api/v1/users', action.version);
  const roles = useApi<{ roles: Role[] }>(session, '/api/v1/roles', action.version);
  const [form, setForm] = useState({ username: '', password: '', roles: [] as string[] });
  const roleNames = roles.data?.roles.map((r) => r.name) ?? [];

  return (
    <section aria-labelledby="users-title" class="page-fill">
      <h2 id="users-title">Users</h2>
      <ErrorBox error={users.error ?? action.error} title="The server refused" />
      <RecordTable
        label="Users"
        records={users.data?.users ?? []}
        rowKey={(u) => u.username}
        columns={[
          { label: 'User', value: (u) => u.username },
          {
            label: 'Roles',
            value: (u) => (
              <span class="toolbar">
                {roleNames.map((name) => (
                  <label key={name}>
                    <input
                      type="checkbox"
                      checked={u.roles.includes(name)}
                      aria-label={`${u.username} has role ${name}`}
                      onChange={(e) => {
                        const on = (e.target as HTMLInputElement).checked;
                        const next = on ? [...u.roles, name] : u.roles.filter((r) => r !== name);
                        void action.run('PATCH', `/api/v1/users/${encodeURIComponent(u.username)}`, {
                          roles: next,
                        });
                      }}
                    />
                    {name}
                  </label>
                ))}
              </span>
            ),
          },
          { label: 'State', value: (u) => (u.disabled ? 'disabled' : 'active') },
          {
            label: 'Actions',
            value: (u) => (
              <span class="toolbar">
                <button
                  type="button"
                  onClick={() =>
                    void action.run('PATCH', `/api/v1/users/${encodeURIComponent(u.username)}`, {
                      disabled: !u.disabled,
                    })
                  }
                >
                  {u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`}
                </button>
                <button
                  type="button"
                  onClick={() => {
                    const password = prompt(`New password for ${u.username} (8 characters or more)`);
                    if (password)
                      void action.run('PATCH', `/api/v1/users/${encodeURIComponent(u.username)}`, {
                        password,
                      });
                  }}
                >
                  Set password
                </button>
                <button
                  type="button"
                  class="danger"
                  onClick={() => {
                    if (confirm(`Delete the user ${u.username}?`))
                      void action.run('DELETE', `/api/v1/users/${encodeURIComponent(u.username)}`);
                  }}
                >
                  Delete {u.username}
                </button>
              </span>
            ),
          },
        ]}
      />
      <form
        class="card"
        aria-labelledby="new-user-title"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await action.run('POST', '/api/v1/users', form))
            setForm({ username: '', password: '', roles: [] });
        }}
      >
        <h3 id="new-user-title">New user</h3>
        <label>
          User name
          <input
            required
            value={form.username}
            onInput={(e) => setForm({ ...form, username: (e.target as HTMLInputElement).value })}
          />
        </label>
        <label>
          Password
          <input
            required
            type="password"
            autoComplete="new-password"
            minLength={8}
            value={form.password}
            onInput={(e) => setForm({ ...form, password: (e.target as HTMLInputElement).value })}
          />
        </label>
        <fieldset>
          <legend>Roles</legend>
          {roleNames.map((name) => (
            <label key={name}>
              <input
                type="checkbox"
                checked={form.roles.includes(name)}
                onChange={(e) =>
                  setForm({
                    ...form,
                    roles: (e.target as HTMLInputElement).checked
                      ? [...form.roles, name]
                      : form.roles.filter((r) => r !== name),
                  })
                }
              />
              {name}
            </label>
          ))}
        </fieldset>
        <button type="submit" class="primary">
          Create user
        </button>
      </form>
    </section>
  );
}

function RolesTab({ session }: { session: Session }) {
  const action = useAction(session);
  const roles = useApi<{ roles: Role[] }>(session, '/api/v1/roles', action.version);
  const [newRole, setNewRole] = useState({ name: '', description: '' });
  const [grant, setGrant] = useState({ role: '', privilege: 'SELECT', table: '' });
  const grantBody = (g: Grant): Grant =>
    g.table === undefined ? { privilege: g.privilege } : { privilege: g.privilege, table: g.table };

  return (
    <section aria-labelledby="roles-title" class="page-fill">
      <h2 id="roles-title">Roles and grants</h2>
      <ErrorBox error={roles.error ?? action.error} title="The server refused" />
      <RecordTable
        label="Roles"
        records={roles.data?.roles ?? []}
        rowKey={(r) => r.name}
        columns={[
          { label: 'Role', value: (r) => `${r.name}${r.builtin ? ' (built in)' : ''}` },
          { label: 'Description', value: (r) => r.description },
          {
            label: 'Grants',
            value: (r) => (
              <ul class="grants">
                {r.grants.map((g) => (
                  <li key={`${g.privilege}-${g.table ?? ''}`}>
                    {g.privilege}
                    {g.table ? ` on ${g.table}` : ''}{' '}
                    {r.builtin ? null : (
                      <button
                        type="button"
                        aria-label={`Revoke ${g.privilege}${g.table ? ` on ${g.table}` : ''} from ${r.name}`}
                        onClick={() =>
                          void action.run(
                            'DELETE',
                            `/api/v1/roles/${encodeURIComponent(r.name)}/grants`,
                            grantBody(g),
                          )
                        }
                      >
                        Revoke
                      </button>
                    )}
                  </li>
                ))}
              </ul>
            ),
          },
          {
            label: 'Actions',
            value: (r) =>
              r.builtin ? null : (
                <button
                  type="button"
                  class="danger"
                  onClick={() => {
                    if (confirm(`Delete the role ${r.name}?`))
                      void action.run('DELETE', `/api/v1/roles/${encodeURIComponent(r.name)}`);
                  }}
                >
                  Delete {r.name}
                </button>
              ),
          },
        ]}
      />
      <div class="two-col">
        <form
          class="card"
          aria-labelledby="new-role-title"
          onSubmit={async (e) => {
            e.preventDefault();
            if (await action.run('POST', '/api/v1/roles', newRole)) setNewRole({ name: '', description: '' });
          }}
        >
          <h3 id="new-role-title">New role</h3>
          <label>
            Role name
            <input
              required
              value={newRole.name}
              onInput={(e) => setNewRole({ ...newRole, name: (e.target as HTMLInputElement).value })}
            />
          </label>
          <label>
            Description
            <input
              value={newRole.description}
              onInput={(e) => setNewRole({ ...newRole, description: (e.target as HTMLInputElement).value })}
            />
          </label>
          <button type="submit" class="primary">
            Create role
          </button>
        </form>
        <form
          class="card"
          aria-labelledby="grant-title"
          onSubmit={(e) => {
            e.preventDefault();
            const body: Grant = TABLE_PRIVILEGES.has(grant.privilege)
              ? { privilege: grant.privilege, table: grant.table || '*' }
              : { privilege: grant.privilege };
            void action.run('POST', `/api/v1/roles/${encodeURIComponent(grant.role)}/grants`, body);
          }}
        >
          <h3 id="grant-title">Grant a privilege</h3>
          <label>
            To role
            <select
              aria-label="To role"
              required
              value={grant.role}
              onChange={(e) => setGrant({ ...grant, role: (e.target as HTMLSelectElement).value })}
            >
              <option value="">(choose)</option>
              {(roles.data?.roles ?? [])
                .filter((r) => !r.builtin)
                .map((r) => (
                  <option key={r.name}>{r.name}</option>
                ))}
            </select>
          </label>
          <label>
            Privilege
            <select
              aria-label="Privilege"
              value={grant.privilege}
              onChange={(e) => setGrant({ ...grant, privilege: (e.target as HTMLSelectElement).value })}
            >
              {PRIVILEGES.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          <label>
            On table
            <input
              value={grant.table}
              placeholder="* (every table)"
              disabled={!TABLE_PRIVILEGES.has(grant.privilege)}
              onInput={(e) => setGrant({ ...grant, table: (e.target as HTMLInputElement).value })}
            />
          </label>
          <button type="submit" class="primary">
            Grant
          </button>
        </form>
      </div>
    </section>
  );
}

interface SessionRecord {
  id: string;
  /** The node holding the session: with several nodes on one PostgreSQL database, the list holds them all. */
  node: string;
  user: string;
  remote_address: string;
  endpoint: string;
  connected_at: string;
  authenticated_at: string;
  expires_at: string | null;
}

function SessionsTab({ session }: { session: Session }) {
  const action = useAction(session);
  const sessions = useApi<{ sessions: SessionRecord[]; unanswered_nodes: number | null }>(
    session,
    '/api/v1/sessions',
    action.version,
  );
  const unanswered = sessions.data?.unanswered_nodes;
  return (
    <section aria-labelledby="sessions-title" class="page-fill">
      <div class="toolbar">
        <h2 id="sessions-title">Open sessions</h2>
        <button type="button" onClick={action.reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={sessions.error ?? action.error} title="The server refused" />
      {unanswered === null ? (
        <p class="notice" role="status">
          The database is unreachable: only the sessions of the node that answered are listed.
        </p>
      ) : unanswered ? (
        <p class="notice" role="status">
          {unanswered === 1 ? '1 node' : `${unanswered} nodes`} did not answer in time: their sessions are
          missing.
        </p>
      ) : null}
      <RecordTable
        label="Sessions"
        records={sessions.data?.sessions ?? []}
        rowKey={(s) => s.id}
        columns={[
          { label: 'Session', value: (s) => <code>{s.id}</code> },
          { label: 'Node', value: (s) => <code>{s.node}</code> },
          { label: 'User', value: (s) => s.user },
          { label: 'Address', value: (s) => s.remote_address },
          { label: 'Endpoint', value: (s) => s.endpoint },
          { label: 'Connected', value: (s) => new Date(s.connected_at).toLocaleString() },
          {
            label: 'Token expires',
            value: (s) => (s.expires_at ? new Date(s.expires_at).toLocaleString() : ''),
          },
          {
            label: 'Actions',
            value: (s) => (
              <button
                type="button"
                class="danger"
                aria-label={`Kill session ${s.id} of ${s.user}`}
                onClick={() => void action.run('DELETE', `/api/v1/sessions/${encodeURIComponent(s.id)}`)}
              >
                Kill
              </button>
            ),
          },
        ]}
      />
    </section>
  );
}

interface SubscriptionRecord {
  key: string;
  id: string;
  kind: string;
  session: string;
  user: string;
  target: string;
  created_at: string;
  delivered: number;
  cursor: number;
  lag: number;
  queued_bytes: number;
  shared_by: number;
}

function SubscriptionsTab({ session }: { session: Session }) {
  const action = useAction(session);
  const subs = useApi<{ head: number; subscriptions: SubscriptionRecord[] }>(
    session,
    '/api/v1/subscriptions',
    action.version,
  );
  return (
    <section aria-labelledby="subs-title" class="page-fill">
      <div class="toolbar">
        <h2 id="subs-title">Subscriptions</h2>
        <button type="button" onClick={action.reload}>
          Refresh
        </button>
        {subs.data ? <span class="muted">change log head: {formatCount(subs.data.head)}</span> : null}
      </div>
      <ErrorBox error={subs.error ?? action.error} title="The server refused" />
      <RecordTable
        label="Subscriptions"
        records={subs.data?.subscriptions ?? []}
        rowKey={(s) => s.key}
        columns={[
          { label: 'Kind', value: (s) => s.kind },
          { label: 'Target', value: (s) => <code>{s.target}</code> },
          { label: 'User', value: (s) => s.user },
          { label: 'Session', value: (s) => <code>{s.session}</code> },
          { label: 'Delivered', value: (s) => formatCount(s.delivered) },
          { label: 'Cursor', value: (s) => formatCount(s.cursor) },
          { label: 'Lag', value: (s) => formatCount(s.lag) },
          { label: 'Queued bytes', value: (s) => formatCount(s.queued_bytes) },
          { label: 'Shared by', value: (s) => s.shared_by },
          {
            label: 'Actions',
            value: (s) => (
              <button
                type="button"
                class="danger"
                aria-label={`Kill subscription to ${s.target} of ${s.user}`}
                onClick={() =>
                  void action.run('DELETE', `/api/v1/subscriptions/${encodeURIComponent(s.key)}`)
                }
              >
                Kill
              </button>
            ),
          },
        ]}
      />
    </section>
  );
}

interface AuditRecord {
  time: string;
  event: string;
  user?: string;
  actor?: string;
  ip?: string;
  endpoint?: string;
  session?: string;
  details?: Record<string, unknown>;
}

function AuditTab({ session }: { session: Session }) {
  const [filters, setFilters] = useState({ event: '', user: '', limit: '100' });
  const [applied, setApplied] = useState(filters);
  const [version, setVersion] = useState(0);
  const query = new URLSearchParams();
  query.set('limit', applied.limit);
  if (applied.event.trim()) query.set('event', applied.event.replace(/\s+/g, ''));
  if (applied.user.trim()) query.set('user', applied.user.trim());
  const audit = useApi<{ events: AuditRecord[] }>(session, `/api/v1/audit?${query}`, version);
  const events = [...(audit.data?.events ?? [])].reverse();
  return (
    <section aria-labelledby="audit-title" class="page-fill">
      <h2 id="audit-title">Audit log</h2>
      <form
        class="toolbar"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filters);
          setVersion((v) => v + 1);
        }}
      >
        <label>
          Events
          <input
            value={filters.event}
            placeholder="login.failure,permission.denied"
            onInput={(e) => setFilters({ ...filters, event: (e.target as HTMLInputElement).value })}
          />
        </label>
        <label>
          About user
          <input
            value={filters.user}
            onInput={(e) => setFilters({ ...filters, user: (e.target as HTMLInputElement).value })}
          />
        </label>
        <label>
          Newest
          <select
            aria-label="Newest"
            value={filters.limit}
            onChange={(e) => setFilters({ ...filters, limit: (e.target as HTMLSelectElement).value })}
          >
            {['100', '500', '1000', '10000'].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={audit.error} title="The server refused" />
      <div class="log">
        <RecordTable
          label="Audit records, newest first"
          records={events}
          rowKey={(r) => `${r.time}-${r.event}-${r.session ?? ''}-${JSON.stringify(r.details ?? {})}`}
          columns={[
            { label: 'Time', value: (r) => new Date(r.time).toLocaleString() },
            { label: 'Event', value: (r) => r.event },
            { label: 'User', value: (r) => r.user ?? '' },
            { label: 'Actor', value: (r) => r.actor ?? '' },
            { label: 'Address', value: (r) => r.ip ?? '' },
            { label: 'Endpoint', value: (r) => r.endpoint ?? '' },
            { label: 'Details', value: (r) => <code>{r.details ? JSON.stringify(r.details) : ''}</code> },
          ]}
        />
      </div>
    </section>
  );
}
