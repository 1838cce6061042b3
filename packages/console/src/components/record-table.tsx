/** A plain table of records (admin lists, audit log): columns picked and labelled by the caller. */
import type { ComponentChildren } from 'preact';

export interface RecordColumn<T> {
  label: string;
  value: (record: T) => ComponentChildren;
}

export function RecordTable<T>({
  label,
  columns,
  records,
  rowKey,
}: {
  label: string;
  columns: RecordColumn<T>[];
  records: T[];
  rowKey: (record: T) => string;
}) {
  return (
    <table class="data" aria-label={label}>
      <thead>
        <tr>
          {columns.map((c) => (
            <th scope="col" key={c.label}>
              {c.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {records.length === 0 ? (
          <tr>
            <td colSpan={columns.length} class="muted">
              None.
            </td>
          </tr>
        ) : (
          records.map((record) => (
            <tr key={rowKey(record)}>
              {columns.map((c) => (
                <td key={c.label}>{c.value(record)}</td>
              ))}
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}
