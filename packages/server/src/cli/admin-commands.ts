/**
 * `rustydb user …` and `rustydb role …`: administration of a running server over its HTTP API. The
 * CLI logs in like any client (so the server applies every change to open connections at once, and
 * the audit log names the administrator); it never opens the data directory itself.
 *
 * Connection: `--url` (or RUSTYDB_URL, default http://127.0.0.1:8080), and either `--token`
 * (RUSTYDB_TOKEN) or `--user`/`--password` (RUSTYDB_USER, default admin / RUSTYDB_PASSWORD).
 */
import { generatePassword } from '../auth/passwords.ts';
import type { ParsedArgs } from './args.ts';

export const ADMIN_USAGE = `user and role administration (talks to a running server over HTTP):
  rustydb user list
  rustydb user add NAME [--new-password P] [--roles ROLE,ROLE]   (a password is generated when none is given)
  rustydb user passwd NAME [--new-password P]                    (ends NAME's open sessions and tokens)
  rustydb user grant NAME ROLE          give a role to a user
  rustydb user revoke NAME ROLE         take a role from a user
  rustydb user disable NAME | enable NAME | delete NAME
  rustydb role list
  rustydb role add ROLE [--description TEXT]
  rustydb role grant ROLE PRIVILEGE [TABLE]     e.g. role grant analyst SELECT orders
  rustydb role revoke ROLE PRIVILEGE [TABLE]
  connection: --url URL (RUSTYDB_URL, default http://127.0.0.1:8080)
              --user NAME --password P (RUSTYDB_USER, default admin; RUSTYDB_PASSWORD), or --token T (RUSTYDB_TOKEN)
  --json prints the server's answer as JSON`;

export class UsageError extends Error {}

export interface Connection {
  url: string;
  token: string;
}

interface ApiAnswer {
  status: number;
  body: { success?: boolean; data?: unknown; error?: { code?: string; message?: string } };
}

export function option(args: ParsedArgs, name: string, env: string | undefined): string | undefined {
  const value = args.options[name];
  if (typeof value === 'string') return value;
  if (value === true) throw new UsageError(`--${name.replaceAll('_', '-')} needs a value`);
  return env === undefined || env === '' ? undefined : env;
}

async function call(url: string, method: string, path: string, token: string | undefined, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let parsed: ApiAnswer['body'];
  try {
    parsed = JSON.parse(text) as ApiAnswer['body'];
  } catch {
    parsed = { error: { message: text.slice(0, 200) } };
  }
  return { status: res.status, body: parsed } satisfies ApiAnswer;
}

function unwrap(answer: ApiAnswer): unknown {
  if (answer.status >= 200 && answer.status < 300 && answer.body.success !== false) return answer.body.data;
  const error = answer.body.error;
  throw new Error(`${error?.code ?? `HTTP ${answer.status}`}: ${error?.message ?? 'request failed'}`);
}

export async function connect(args: ParsedArgs, env: NodeJS.ProcessEnv): Promise<Connection> {
  const url = (option(args, 'url', env.RUSTYDB_URL) ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = option(args, 'token', env.RUSTYDB_TOKEN);
  if (token) return { url, token };
  const user = option(args, 'user', env.RUSTYDB_USER) ?? 'admin';
  const password = option(args, 'password', env.RUSTYDB_PASSWORD);
  if (password === undefined) {
    throw new UsageError('give the administrator password with RUSTYDB_PASSWORD (or --password), or a token');
  }
  const data = unwrap(
    await call(url, 'POST', '/api/v1/auth/login', undefined, { username: user, password }),
  ) as {
    token: string;
  };
  return { url, token: data.token };
}

function need(positional: readonly string[], index: number, what: string): string {
  const value = positional[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

interface UserView {
  username: string;
  roles: string[];
  disabled: boolean;
}

interface RoleView {
  name: string;
  description: string;
  builtin: boolean;
  grants: { privilege: string; table?: string }[];
}

/** Runs `user …` or `role …`; returns the text to print. */
export async function runAdminCommand(
  args: ParsedArgs,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const [sub, ...rest] = args.positional;
  if (sub === undefined) throw new UsageError(`missing subcommand for '${args.command}'`);
  const json = args.options.json === true;
  const show = (data: unknown, text: string): string => (json ? JSON.stringify(data, null, 2) : text);
  const conn = await connect(args, env);
  const api = async (method: string, path: string, body?: unknown): Promise<unknown> =>
    unwrap(await call(conn.url, method, path, conn.token, body));
  const userPath = (name: string): string => `/api/v1/users/${encodeURIComponent(name)}`;
  const rolePath = (name: string): string => `/api/v1/roles/${encodeURIComponent(name)}`;

  if (args.command === 'user') {
    switch (sub) {
      case 'list': {
        const { users } = (await api('GET', '/api/v1/users')) as { users: UserView[] };
        const lines = users.map(
          (u) => `${u.username.padEnd(24)} ${u.roles.join(',') || '-'}${u.disabled ? '  (disabled)' : ''}`,
        );
        return show(users, lines.join('\n'));
      }
      case 'add': {
        const name = need(rest, 0, 'user name');
        const given = option(args, 'new_password', env.RUSTYDB_NEW_PASSWORD);
        const password = given ?? generatePassword();
        const roles =
          option(args, 'roles', undefined)
            ?.split(',')
            .filter((r) => r !== '') ?? [];
        const data = await api('POST', '/api/v1/users', { username: name, password, roles });
        return show(
          given ? data : { ...(data as object), generated_password: password },
          `created user '${name}'${roles.length ? ` with roles ${roles.join(', ')}` : ''}` +
            (given ? '' : `\ngenerated password: ${password}`),
        );
      }
      case 'passwd': {
        const name = need(rest, 0, 'user name');
        const given = option(args, 'new_password', env.RUSTYDB_NEW_PASSWORD);
        const password = given ?? generatePassword();
        const data = await api('PATCH', userPath(name), { password });
        return show(
          given ? data : { ...(data as object), generated_password: password },
          `password of '${name}' changed; their open sessions were closed` +
            (given ? '' : `\ngenerated password: ${password}`),
        );
      }
      case 'grant':
      case 'revoke': {
        const name = need(rest, 0, 'user name');
        const role = need(rest, 1, 'role name');
        const user = (await api('GET', userPath(name))) as UserView;
        const roles =
          sub === 'grant' ? [...new Set([...user.roles, role])] : user.roles.filter((r) => r !== role);
        if (sub === 'revoke' && roles.length === user.roles.length) {
          throw new Error(`user '${name}' does not have the role '${role}'`);
        }
        const data = (await api('PATCH', userPath(name), { roles })) as UserView;
        return show(data, `${name}: roles ${data.roles.join(', ') || '(none)'}`);
      }
      case 'disable':
      case 'enable': {
        const name = need(rest, 0, 'user name');
        const data = await api('PATCH', userPath(name), { disabled: sub === 'disable' });
        return show(data, `user '${name}' ${sub}d`);
      }
      case 'delete': {
        const name = need(rest, 0, 'user name');
        const data = await api('DELETE', userPath(name));
        return show(data, `user '${name}' deleted`);
      }
      default:
        throw new UsageError(`unknown subcommand 'user ${sub}'`);
    }
  }

  switch (sub) {
    case 'list': {
      const { roles } = (await api('GET', '/api/v1/roles')) as { roles: RoleView[] };
      const lines = roles.map(
        (r) =>
          `${r.name.padEnd(16)} ${r.grants.map((g) => (g.table ? `${g.privilege} ON ${g.table}` : g.privilege)).join(', ') || '-'}`,
      );
      return show(roles, lines.join('\n'));
    }
    case 'add': {
      const name = need(rest, 0, 'role name');
      const description = option(args, 'description', undefined) ?? '';
      const data = await api('POST', '/api/v1/roles', { name, description, grants: [] });
      return show(data, `created role '${name}'`);
    }
    case 'grant':
    case 'revoke': {
      const role = need(rest, 0, 'role name');
      const privilege = need(rest, 1, 'privilege');
      const table = rest[2];
      const body = table === undefined ? { privilege } : { privilege, table };
      const data = (await api(
        sub === 'grant' ? 'POST' : 'DELETE',
        `${rolePath(role)}/grants`,
        body,
      )) as RoleView;
      return show(
        data,
        `${role}: ${data.grants.map((g) => (g.table ? `${g.privilege} ON ${g.table}` : g.privilege)).join(', ') || '(no grants)'}`,
      );
    }
    default:
      throw new UsageError(`unknown subcommand 'role ${sub}'`);
  }
}
