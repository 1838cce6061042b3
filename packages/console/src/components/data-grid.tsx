/**
 * A virtualized result grid: only the rows in view are in the DOM, so a million rows scroll as
 * smoothly as a hundred. Rows are held by the caller, who may keep appending while the grid shows them
 * and hands the grid a way to read row i (an array of its values); `count` tells it how many there are.
 *
 * Browsers cap an element's height (about 17 million pixels in Firefox), so beyond a maximum the
 * scroll range is scaled: the scroll position is mapped to a fractional first row.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { cellText } from '../lib/format.ts';

const ROW_HEIGHT = 24;
const HEADER_HEIGHT = 26;
const MAX_SCROLL_HEIGHT = 8_000_000;
const OVERSCAN = 6;

export interface DataGridProps {
  columns: string[];
  /** Row `index` (0-based) as an array of its values, or undefined past the end. */
  row: (index: number) => readonly unknown[] | undefined;
  /** How many rows to show (rows may grow while streaming; the grid re-renders when this changes). */
  count: number;
  label: string;
}

function columnWidths(columns: string[], row: DataGridProps['row'], count: number): number[] {
  const sample: (readonly unknown[])[] = [];
  for (let i = 0; i < Math.min(200, count); i++) sample.push(row(i)!);
  return columns.map((column, i) => {
    let chars = column.length;
    for (const row of sample) chars = Math.max(chars, Math.min(48, cellText(row[i]).length));
    return Math.max(64, Math.min(360, chars * 8 + 16));
  });
}

export function DataGrid({ columns, row: rowAt, count, label }: DataGridProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(400);
  const [widths, setWidths] = useState<number[]>([]);

  // Widths from the first rows, fixed once there are some so columns do not jump while streaming.
  useEffect(() => {
    if (widths.length !== columns.length || (count > 0 && widths.every((w) => w === 64))) {
      setWidths(columnWidths(columns, rowAt, count));
    }
  }, [columns, count > 0]);

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setViewport(element.clientHeight));
    observer.observe(element);
    setViewport(element.clientHeight);
    return () => observer.disconnect();
  }, []);

  const numberWidth = Math.max(56, String(count).length * 8 + 20);
  const totalWidth = numberWidth + widths.reduce((a, b) => a + b, 0);
  const bodyViewport = Math.max(ROW_HEIGHT, viewport - HEADER_HEIGHT);
  const realHeight = count * ROW_HEIGHT;
  const height = Math.min(realHeight, MAX_SCROLL_HEIGHT);
  const scaled = realHeight > MAX_SCROLL_HEIGHT;
  const visibleRows = Math.ceil(bodyViewport / ROW_HEIGHT);
  // The (fractional) row at the top of the view.
  const exact = scaled
    ? (Math.min(scrollTop, height - bodyViewport) / Math.max(1, height - bodyViewport)) *
      Math.max(0, count - bodyViewport / ROW_HEIGHT)
    : scrollTop / ROW_HEIGHT;
  const first = Math.max(0, Math.floor(exact) - OVERSCAN);
  const last = Math.min(count, Math.ceil(exact) + visibleRows + OVERSCAN);
  const top = (i: number): number => (scaled ? scrollTop + (i - exact) * ROW_HEIGHT : i * ROW_HEIGHT);

  const shown = [];
  for (let i = first; i < last; i++) {
    const row = rowAt(i);
    if (!row) break;
    shown.push(
      <div
        class={i % 2 === 1 ? 'grid-row alt' : 'grid-row'}
        role="row"
        aria-rowindex={i + 2}
        key={i}
        style={{
          top: `${top(i) + HEADER_HEIGHT}px`,
          height: `${ROW_HEIGHT}px`,
          lineHeight: `${ROW_HEIGHT}px`,
        }}
      >
        <div class="grid-cell rownum" role="rowheader" style={{ width: `${numberWidth}px` }}>
          {i + 1}
        </div>
        {columns.map((_, c) => {
          const value = row[c];
          return (
            <div
              class={`grid-cell${value === null ? ' null' : typeof value === 'number' ? ' num' : ''}`}
              role="gridcell"
              key={c}
              style={{ width: `${widths[c] ?? 120}px` }}
            >
              {cellText(value)}
            </div>
          );
        })}
      </div>,
    );
  }

  return (
    <div
      class="grid"
      ref={scroller}
      role="grid"
      aria-label={label}
      aria-rowcount={count + 1}
      aria-colcount={columns.length + 1}
      tabIndex={0}
      onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
    >
      <div
        class="grid-header"
        role="row"
        aria-rowindex={1}
        style={{ width: `${totalWidth}px`, height: `${HEADER_HEIGHT}px` }}
      >
        <div
          class="grid-cell rownum"
          role="columnheader"
          style={{ width: `${numberWidth}px`, lineHeight: `${HEADER_HEIGHT}px` }}
        >
          #
        </div>
        {columns.map((column, c) => (
          <div
            class="grid-cell"
            role="columnheader"
            key={c}
            title={column}
            style={{ width: `${widths[c] ?? 120}px`, lineHeight: `${HEADER_HEIGHT}px` }}
          >
            {column}
          </div>
        ))}
      </div>
      <div style={{ height: `${height}px`, width: `${totalWidth}px` }} role="presentation">
        {shown}
      </div>
    </div>
  );
}
