/**
 * Sign-in with user name and password. Besides a wrong password it has two clear outcomes of its
 * own: the account is locked out for a while after too many failed attempts (the page counts down),
 * and the session a reload tried to resume has ended (revoked, expired, server gone).
 */
import { useEffect, useState } from 'preact/hooks';
import { isRustyDBError } from '@rustydb/client';
import { describeSignInFailure, signIn, type Session, type SignInFailure } from '../lib/session.ts';

export function SignInPage({
  ended,
  onSignedIn,
}: {
  ended?: unknown;
  onSignedIn: (session: Session) => void;
}) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<SignInFailure | undefined>();

  useEffect(() => {
    document.title = 'Sign in · RustyDB console';
  }, []);

  if (failure?.kind === 'locked') {
    return <LockedOut failure={failure} onRetry={() => setFailure(undefined)} />;
  }

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      onSignedIn(await signIn(username, password));
    } catch (err) {
      setFailure(describeSignInFailure(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="center-page">
      <form class="card" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to RustyDB</h1>
        {ended !== undefined ? (
          <div class="notice" role="status">
            Your session ended
            {isRustyDBError(ended) ? `: ${ended.code} (${ended.message})` : ''}. Sign in again.
          </div>
        ) : null}
        <label>
          User name
          <input
            name="username"
            autoComplete="username"
            required
            value={username}
            onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </label>
        {failure ? (
          <div class="error" role="alert">
            {failure.message}
          </div>
        ) : null}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted">
          On a new server the user is <code>admin</code>, with the password the server printed when it first
          started.
        </p>
      </form>
    </main>
  );
}

function LockedOut({
  failure,
  onRetry,
}: {
  failure: SignInFailure & { kind: 'locked' };
  onRetry: () => void;
}) {
  const [until] = useState(() => Date.now() + failure.retryAfterMs);
  const [left, setLeft] = useState(failure.retryAfterMs);
  useEffect(() => {
    const timer = setInterval(() => setLeft(Math.max(0, until - Date.now())), 250);
    return () => clearInterval(timer);
  }, [until]);
  const seconds = Math.ceil(left / 1000);
  return (
    <main class="center-page">
      <section class="card" aria-labelledby="locked-title">
        <h1 id="locked-title">Sign-in locked for now</h1>
        <p role="alert">
          Too many failed sign-ins for this user from this address. The server refuses further attempts for a
          while to stop password guessing.
        </p>
        <p aria-live="polite">
          {seconds > 0 ? `You can try again in ${seconds} s.` : 'You can try again now.'}
        </p>
        <button type="button" class="primary" disabled={seconds > 0} onClick={onRetry}>
          Back to sign-in
        </button>
      </section>
    </main>
  );
}
