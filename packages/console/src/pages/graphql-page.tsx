/**
 * The GraphQL explorer: an editor for operations and their variables, queries and mutations over
 * `POST /graphql`, subscriptions over `/graphql/ws` (graphql-ws) shown as an event log, and the
 * generated schema's documentation from introspection (the schema is per user: it lists what the
 * signed-in user may do). The editor highlights GraphQL and, once the schema is in, completes fields,
 * arguments and types from it and marks what it would refuse (cm6-graphql).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { graphql as graphqlLanguage } from 'cm6-graphql';
import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery } from 'graphql';
import type { GraphQLResult } from '@rustydb/client';
import type { PageProps } from '../app.tsx';
import { createCodeEditor, type CodeEditor } from '../lib/code-editor.ts';
import { ErrorBox } from '../lib/errors.tsx';

const DRAFT_KEY = 'rustydb.console.graphql';
const MAX_EVENTS = 500;

interface TypeRef {
  kind: string;
  name: string | null;
  ofType?: TypeRef | null;
}
interface Field {
  name: string;
  description: string | null;
  args?: { name: string; description: string | null; type: TypeRef; defaultValue: string | null }[];
  type: TypeRef;
  defaultValue?: string | null;
}
interface SchemaType {
  kind: string;
  name: string;
  description: string | null;
  fields: Field[] | null;
  inputFields: Field[] | null;
  enumValues: { name: string; description: string | null }[] | null;
}
interface Schema {
  queryType: { name: string } | null;
  mutationType: { name: string } | null;
  subscriptionType: { name: string } | null;
  types: SchemaType[];
}

function typeName(ref: TypeRef): string {
  if (ref.kind === 'NON_NULL' && ref.ofType) return `${typeName(ref.ofType)}!`;
  if (ref.kind === 'LIST' && ref.ofType) return `[${typeName(ref.ofType)}]`;
  return ref.name ?? '?';
}

function namedType(ref: TypeRef): string {
  return ref.ofType ? namedType(ref.ofType) : (ref.name ?? '');
}

/** The operation's kind, from its first keyword (comments and whitespace skipped). */
export function operationKind(text: string): 'query' | 'mutation' | 'subscription' {
  const first = text.replace(/#[^\n]*/g, '').trim();
  if (/^subscription\b/.test(first)) return 'subscription';
  if (/^mutation\b/.test(first)) return 'mutation';
  return 'query';
}

interface LoggedEvent {
  n: number;
  at: string;
  result: GraphQLResult;
}

export default function GraphQLPage({ session }: PageProps) {
  const { client } = session;
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<CodeEditor>();
  const [variables, setVariables] = useState('{}');
  const [variablesError, setVariablesError] = useState<string>();
  const [result, setResult] = useState<GraphQLResult>();
  const [error, setError] = useState<unknown>();
  const [events, setEvents] = useState<LoggedEvent[]>([]);
  const [subscription, setSubscription] = useState<AsyncIterableIterator<GraphQLResult>>();
  const [schema, setSchema] = useState<Schema>();
  const [docType, setDocType] = useState<string>();
  const [search, setSearch] = useState('');
  const runRef = useRef<() => void>(() => {});

  useEffect(() => {
    editor.current = createCodeEditor({
      parent: host.current!,
      doc: localStorage.getItem(DRAFT_KEY) ?? '{\n  __typename\n}',
      label: 'GraphQL operation (Ctrl+Enter or Cmd+Enter runs it)',
      language: graphqlLanguage(),
      onRun: () => runRef.current(),
      onChange: (doc) => localStorage.setItem(DRAFT_KEY, doc),
    });
    client
      .graphql<IntrospectionQuery>(getIntrospectionQuery())
      .then((r) => {
        if (!r.data) throw new Error(r.errors?.[0]?.message ?? 'no schema');
        setSchema(r.data.__schema as unknown as Schema);
        // Completion and checking against the schema this user was given.
        editor.current?.setLanguage(graphqlLanguage(buildClientSchema(r.data)));
      })
      .catch(setError);
    return () => editor.current?.destroy();
  }, [client]);

  useEffect(() => () => void subscription?.return?.(), [subscription]);

  const stop = (): void => {
    void subscription?.return?.();
    setSubscription(undefined);
  };

  const run = async (): Promise<void> => {
    const query = editor.current?.getText() ?? '';
    let vars: Record<string, unknown> = {};
    try {
      vars = variables.trim() ? (JSON.parse(variables) as Record<string, unknown>) : {};
      if (typeof vars !== 'object' || vars === null || Array.isArray(vars))
        throw new Error('variables must be a JSON object');
      setVariablesError(undefined);
    } catch (err) {
      setVariablesError((err as Error).message);
      return;
    }
    setError(undefined);
    if (operationKind(query) === 'subscription') {
      stop();
      setEvents([]);
      setResult(undefined);
      const stream = client.graphqlSubscribe(query, vars);
      setSubscription(stream);
      let n = 0;
      try {
        for await (const next of stream) {
          n++;
          const entry = { n, at: new Date().toISOString(), result: next };
          setEvents((list) => [entry, ...list].slice(0, MAX_EVENTS));
        }
      } catch (err) {
        setError(err);
      } finally {
        setSubscription((current) => (current === stream ? undefined : current));
      }
      return;
    }
    try {
      setResult(await client.graphql(query, vars));
    } catch (err) {
      setError(err);
    }
  };
  runRef.current = () => void run();

  const types = (schema?.types ?? []).filter((t) => !t.name.startsWith('__'));
  const roots = [schema?.queryType?.name, schema?.mutationType?.name, schema?.subscriptionType?.name].filter(
    (n): n is string => !!n,
  );
  const shown = types.find((t) => t.name === docType);
  const matching = types.filter((t) => t.name.toLowerCase().includes(search.toLowerCase()));

  return (
    <div class="page-fill">
      <h1>GraphQL</h1>
      <div class="two-col">
        <section aria-label="Operation" class="page-fill">
          <div class="editor" ref={host} />
          <label class="stacked">
            Variables (JSON)
            <textarea
              rows={3}
              value={variables}
              aria-invalid={variablesError ? 'true' : undefined}
              onInput={(e) => setVariables((e.target as HTMLTextAreaElement).value)}
            />
          </label>
          {variablesError ? (
            <div class="error" role="alert">
              Variables: {variablesError}
            </div>
          ) : null}
          <div class="toolbar">
            <button type="button" class="primary" onClick={() => void run()}>
              Run (Ctrl+Enter)
            </button>
            <button type="button" disabled={!subscription} onClick={stop}>
              Stop subscription
            </button>
            <span role="status" class="muted" data-testid="subscription-status">
              {subscription ? 'subscribed over /graphql/ws' : ''}
            </span>
          </div>
          <ErrorBox error={error} />
          {result ? (
            <pre aria-label="Result" tabIndex={0} data-testid="graphql-result">
              {JSON.stringify(result, null, 2)}
            </pre>
          ) : null}
          {events.length > 0 || subscription ? (
            <div class="log">
              <table class="data" aria-label="Subscription events, newest first">
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Received</th>
                    <th scope="col">Result</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((e) => (
                    <tr key={e.n}>
                      <td>{e.n}</td>
                      <td>{new Date(e.at).toLocaleTimeString()}</td>
                      <td class="payload mono">
                        {JSON.stringify(e.result.errors ? e.result : e.result.data)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </section>
        <section aria-labelledby="gql-docs-title" class="gql-docs">
          <h2 id="gql-docs-title">Schema</h2>
          {!schema ? <p aria-busy="true">Loading the schema…</p> : null}
          {shown ? (
            <TypeDoc type={shown} onOpen={setDocType} />
          ) : (
            <>
              <p>
                Roots:{' '}
                {roots.map((r) => (
                  <button type="button" key={r} class="linkish" onClick={() => setDocType(r)}>
                    {r}
                  </button>
                ))}
              </p>
              <label>
                Find a type
                <input value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
              </label>
              <ul>
                {matching.map((t) => (
                  <li key={t.name}>
                    <button type="button" class="linkish" onClick={() => setDocType(t.name)}>
                      {t.name}
                    </button>{' '}
                    <span class="muted">{t.kind.toLowerCase()}</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          {shown ? (
            <button type="button" onClick={() => setDocType(undefined)}>
              All types
            </button>
          ) : null}
        </section>
      </div>
    </div>
  );
}

function TypeDoc({ type, onOpen }: { type: SchemaType; onOpen: (name: string) => void }) {
  const link = (ref: TypeRef) => (
    <button type="button" class="linkish" onClick={() => onOpen(namedType(ref))}>
      {typeName(ref)}
    </button>
  );
  const fields = type.fields ?? type.inputFields ?? [];
  return (
    <article aria-label={`Type ${type.name}`}>
      <h3>
        {type.name} <span class="muted">{type.kind.toLowerCase()}</span>
      </h3>
      {type.description ? <p>{type.description}</p> : null}
      {fields.length > 0 ? (
        <dl>
          {fields.map((f) => (
            <div key={f.name}>
              <dt class="mono">
                {f.name}
                {f.args && f.args.length > 0 ? (
                  <>
                    (
                    {f.args.map((a, i) => (
                      <span key={a.name}>
                        {i > 0 ? ', ' : ''}
                        {a.name}: {link(a.type)}
                      </span>
                    ))}
                    )
                  </>
                ) : null}
                : {link(f.type)}
              </dt>
              {f.description ? <dd>{f.description}</dd> : null}
            </div>
          ))}
        </dl>
      ) : null}
      {type.enumValues ? (
        <ul>
          {type.enumValues.map((v) => (
            <li key={v.name} class="mono">
              {v.name}
            </li>
          ))}
        </ul>
      ) : null}
    </article>
  );
}
