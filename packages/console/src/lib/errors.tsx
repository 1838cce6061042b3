/** Errors as the pages show them: the server's code first, then its message and details. */
import { isRustyDBError } from '@rustydb/client';

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (error === undefined || error === null) return null;
  const code = isRustyDBError(error) ? error.code : 'ERROR';
  const message = error instanceof Error ? error.message : String(error);
  const details = isRustyDBError(error) ? error.details : undefined;
  return (
    <div class="error" role="alert">
      {title ? <strong>{title}: </strong> : null}
      <span class="code">{code}</span>
      <span>{message}</span>
      {details && Object.keys(details).length > 0 ? (
        <div class="mono muted">{JSON.stringify(details)}</div>
      ) : null}
    </div>
  );
}
