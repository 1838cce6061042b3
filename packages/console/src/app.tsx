/**
 * The console's frame: the sign-in gate, then the shell (top bar, navigation, the current page).
 * Each page is its own chunk, loaded when it is first opened, so the first page stays small.
 */
import type { ComponentType } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ConnectionState } from '@rustydb/client';
import { forgetToken, openSession, savedToken, signOut, type Session } from './lib/session.ts';
import { href, useRoute, type Route } from './lib/router.ts';
import { savedTheme, setTheme, type Theme } from './lib/theme.ts';
import { SignInPage } from './pages/sign-in-page.tsx';
import { ErrorBox } from './lib/errors.tsx';

export interface PageProps {
  session: Session;
  route: Route;
}

interface PageSpec {
  title: string;
  load: () => Promise<{ default: ComponentType<PageProps> }>;
  /** Shown only to users who hold this (the server refuses the others anyway). */
  needs?: (session: Session) => boolean;
}

const PAGES: Record<string, PageSpec> = {
  sql: { title: 'SQL editor', load: () => import('./pages/sql-page.tsx') },
  tables: { title: 'Tables', load: () => import('./pages/tables-page.tsx') },
  realtime: { title: 'Realtime', load: () => import('./pages/realtime-page.tsx') },
  documents: { title: 'Documents', load: () => import('./pages/documents-page.tsx') },
  graphql: { title: 'GraphQL', load: () => import('./pages/graphql-page.tsx') },
  metrics: {
    title: 'Metrics',
    load: () => import('./pages/metrics-page.tsx'),
    needs: (s) => s.access.hasGlobal('MONITOR'),
  },
  admin: {
    title: 'Administration',
    load: () => import('./pages/admin-page.tsx'),
    needs: (s) => s.access.admin,
  },
};

type Gate =
  | { state: 'resuming' }
  | { state: 'signed-out'; reason?: unknown }
  | { state: 'signed-in'; session: Session };

export function App() {
  const [gate, setGate] = useState<Gate>(() =>
    savedToken() ? { state: 'resuming' } : { state: 'signed-out' },
  );

  // A reload of the tab picks the session up again with the saved token.
  useEffect(() => {
    if (gate.state !== 'resuming') return;
    const token = savedToken();
    if (!token) {
      setGate({ state: 'signed-out' });
      return;
    }
    openSession(token).then(
      (session) => setGate({ state: 'signed-in', session }),
      (reason: unknown) => {
        forgetToken();
        setGate({ state: 'signed-out', reason });
      },
    );
  }, [gate.state]);

  if (gate.state === 'resuming') {
    return (
      <div class="center-page" aria-busy="true">
        <p>Connecting…</p>
      </div>
    );
  }
  if (gate.state === 'signed-out') {
    return (
      <SignInPage ended={gate.reason} onSignedIn={(session) => setGate({ state: 'signed-in', session })} />
    );
  }
  return (
    <Shell
      session={gate.session}
      onSignedOut={(reason) => {
        forgetToken();
        setGate({ state: 'signed-out', reason });
      }}
    />
  );
}

function Shell({ session, onSignedOut }: { session: Session; onSignedOut: (reason?: unknown) => void }) {
  const route = useRoute();
  const [connection, setConnection] = useState<ConnectionState>(session.client.state);
  const [theme, setThemeState] = useState<Theme>(savedTheme());
  // Signing out closes the client before it revokes the token: that close is not the server ending
  // the session, and the sign-in page waits until the revocation is done.
  const signingOut = useRef(false);

  useEffect(() => {
    const off = session.client.on('state', (state) => {
      setConnection(state);
      // The server ended the session (token revoked, user disabled, expired): back to sign-in.
      if (state === 'closed' && !signingOut.current) {
        session.client.ready().catch((reason: unknown) => onSignedOut(reason));
      }
    });
    return off;
  }, [session]);

  const visible = Object.entries(PAGES).filter(([, spec]) => !spec.needs || spec.needs(session));
  const spec = PAGES[route.page];
  const allowed = spec && (!spec.needs || spec.needs(session));

  useEffect(() => {
    document.title = `${spec?.title ?? 'Not found'} · RustyDB console`;
  }, [spec]);

  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href('sql')}>
          RustyDB
        </a>
        <span class="muted" aria-live="polite">
          <span class={`status-dot ${connection}`} aria-hidden="true" />
          {connection === 'open' ? 'connected' : connection}
        </span>
        <span class="spacer" />
        <span>
          Signed in as <strong data-testid="user">{session.me.user}</strong>
        </span>
        <button
          type="button"
          aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} mode`}
          onClick={() => {
            const next = theme === 'dark' ? 'light' : 'dark';
            setTheme(next);
            setThemeState(next);
          }}
        >
          {theme === 'dark' ? 'Light mode' : 'Dark mode'}
        </button>
        <button
          type="button"
          disabled={signingOut.current}
          onClick={async () => {
            signingOut.current = true;
            await signOut(session);
            onSignedOut();
          }}
        >
          Sign out
        </button>
      </header>
      <nav class="side" aria-label="Pages">
        <ul>
          {visible.map(([page, s]) => (
            <li key={page}>
              <a href={href(page)} aria-current={page === route.page ? 'page' : undefined}>
                {s.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {allowed ? (
          <LazyPage key={route.page} spec={spec} session={session} route={route} />
        ) : (
          <div class="notice" role="status">
            {spec ? `${spec.title} needs a privilege you do not hold.` : 'There is no such page.'}{' '}
            <a href={href('sql')}>Open the SQL editor</a>.
          </div>
        )}
      </main>
    </div>
  );
}

function LazyPage({ spec, session, route }: { spec: PageSpec; session: Session; route: Route }) {
  const [loaded, setLoaded] = useState<{ Page?: ComponentType<PageProps>; error?: unknown }>({});
  useEffect(() => {
    let live = true;
    spec.load().then(
      (module) => live && setLoaded({ Page: module.default }),
      (error: unknown) => live && setLoaded({ error }),
    );
    return () => {
      live = false;
    };
  }, [spec]);
  if (loaded.error) return <ErrorBox error={loaded.error} title="The page could not be loaded" />;
  if (!loaded.Page) return <p aria-busy="true">Loading {spec.title}…</p>;
  const { Page } = loaded;
  return <Page session={session} route={route} />;
}
