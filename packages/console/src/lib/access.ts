/**
 * What the signed-in user may do, from `GET /api/v1/auth/me`: the console shows only the controls
 * the server would allow. The server still checks every statement; its refusals are shown as they come.
 */
export interface Grant {
  privilege: string;
  table?: string;
}

export interface Me {
  user: string;
  roles: string[];
  grants: Grant[];
  expires_at: string | null;
}

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export class Access {
  readonly me: Me;

  constructor(me: Me) {
    this.me = me;
  }

  get admin(): boolean {
    return this.me.grants.some((g) => g.privilege === 'ADMIN');
  }

  /** A schema or server privilege: CREATE, ALTER, DROP, MONITOR, ADMIN. */
  hasGlobal(privilege: string): boolean {
    return this.admin || this.me.grants.some((g) => g.privilege === privilege && g.table === undefined);
  }

  onTable(privilege: TablePrivilege, table: string): boolean {
    if (this.admin) return true;
    const name = table.toLowerCase();
    return this.me.grants.some((g) => g.privilege === privilege && (g.table === '*' || g.table === name));
  }

  /** Why a change is not offered, in words for the page. */
  explainReadOnly(table: string): string {
    const roles = this.me.roles.length > 0 ? this.me.roles.join(', ') : 'none';
    const held = (['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const).filter((p) => this.onTable(p, table));
    return `You are signed in as ${this.me.user} (roles: ${roles}), which may ${
      held.length > 0 ? held.join(', ') : 'not read or change'
    } on ${table}${held.length > 0 ? ' only' : ''}. Ask an administrator for a grant to change its rows.`;
  }
}
