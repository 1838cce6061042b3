/**
 * The metrics dashboard (MONITOR): live uPlot charts of the server's load from
 * `/api/v1/metrics/stream`, one sample a second, over a window of 1, 5 or 15 minutes kept in the
 * browser. Each chart names its series with their latest values in text beside the canvas.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { PageProps } from '../app.tsx';
import { ErrorBox } from '../lib/errors.tsx';
import { formatBytes, formatNumber } from '../lib/format.ts';
import { metricsStoreOf, type Sample } from '../lib/metrics-store.ts';

const WINDOWS = [
  { label: '1 min', ms: 60_000 },
  { label: '5 min', ms: 5 * 60_000 },
  { label: '15 min', ms: 15 * 60_000 },
];
const COLORS = ['#d9480f', '#1971c2', '#2f9e44', '#ae3ec9', '#e8a200', '#0c8599'];

interface SeriesSpec {
  label: string;
  value: (m: Sample['metrics']) => number | null;
  /** A second y scale (values of another magnitude in the same chart). */
  scale?: string;
}

interface ChartSpec {
  id: string;
  title: string;
  unit: (n: number) => string;
  series: (samples: Sample[]) => SeriesSpec[];
}

const num = (key: string) => (m: Sample['metrics']) => {
  const v = m[key];
  return typeof v === 'number' ? v : null;
};
const plain = (unit: string) => (n: number) => `${formatNumber(n)}${unit}`;

const CHARTS: ChartSpec[] = [
  {
    id: 'cpu',
    title: 'CPU',
    unit: plain(' %'),
    series: () => [{ label: 'CPU % of a core', value: num('cpu_percent') }],
  },
  {
    id: 'memory',
    title: 'Memory',
    unit: formatBytes,
    series: () => [
      { label: 'RSS', value: num('memory_rss_bytes') },
      { label: 'heap used', value: num('memory_heap_used_bytes') },
    ],
  },
  {
    id: 'connections',
    title: 'Connections by endpoint',
    unit: plain(''),
    series: (samples) => {
      const endpoints = new Set<string>();
      for (const s of samples) {
        const by = s.metrics.connections_by_endpoint;
        if (by && typeof by === 'object') for (const key of Object.keys(by)) endpoints.add(key);
      }
      return [...endpoints].sort().map((endpoint) => ({
        label: endpoint,
        value: (m) => {
          const by = m.connections_by_endpoint;
          return by && typeof by === 'object' ? (by[endpoint] ?? 0) : null;
        },
      }));
    },
  },
  {
    id: 'messages',
    title: 'Messages per second',
    unit: plain('/s'),
    series: () => [
      { label: 'in', value: num('messages_in_per_sec') },
      { label: 'out', value: num('messages_out_per_sec') },
    ],
  },
  {
    id: 'queries',
    title: 'Queries per second',
    unit: plain('/s'),
    series: () => [{ label: 'queries', value: num('queries_per_sec') }],
  },
  {
    id: 'latency',
    title: 'Query latency',
    unit: plain(' ms'),
    series: () => [
      { label: 'p50', value: num('query_latency_p50_ms') },
      { label: 'p95', value: num('query_latency_p95_ms') },
      { label: 'p99', value: num('query_latency_p99_ms') },
    ],
  },
  {
    id: 'rows',
    title: 'Rows streamed per second',
    unit: plain('/s'),
    series: () => [{ label: 'rows', value: num('rows_streamed_per_sec') }],
  },
  {
    id: 'changelog',
    title: 'Change log: head and lag',
    unit: plain(''),
    series: () => [
      { label: 'head (sequence)', value: num('changelog_head') },
      { label: 'lag (records)', value: num('changelog_lag'), scale: 'lag' },
    ],
  },
];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export default function MetricsPage({ session }: PageProps) {
  const store = metricsStoreOf(session.client);
  const [windowMs, setWindowMs] = useState(60_000);
  const [, setVersion] = useState(0);
  const [theme, setTheme] = useState(0);
  useEffect(() => store.subscribe(() => setVersion((v) => v + 1)), [store]);
  useEffect(() => {
    const onTheme = (): void => setTheme((t) => t + 1);
    window.addEventListener('rustydb-theme', onTheme);
    return () => window.removeEventListener('rustydb-theme', onTheme);
  }, []);

  const latest = store.samples.at(-1);
  const since = (latest?.t ?? Date.now() / 1000) - windowMs / 1000;
  const samples = store.samples.filter((s) => s.t >= since);

  return (
    <div class="page-fill">
      <div class="toolbar">
        <h1>Metrics</h1>
        <span class="spacer" />
        <label>
          Window
          <select
            aria-label="Window"
            value={windowMs}
            onChange={(e) => setWindowMs(Number((e.target as HTMLSelectElement).value))}
          >
            {WINDOWS.map((w) => (
              <option key={w.ms} value={w.ms}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
        <span class="muted" aria-live="off" data-testid="sample-count">
          {samples.length} samples
        </span>
      </div>
      <ErrorBox error={store.error} />
      {samples.length === 0 && !store.error ? <p aria-busy="true">Waiting for the first sample…</p> : null}
      <div class="charts">
        {CHARTS.map((chart) => (
          <Chart key={`${chart.id}-${theme}`} spec={chart} samples={samples} windowMs={windowMs} />
        ))}
      </div>
    </div>
  );
}

function Chart({ spec, samples, windowMs }: { spec: ChartSpec; samples: Sample[]; windowMs: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const series = spec.series(samples);
  const seriesKey = series.map((s) => s.label).join('|');

  // A chart per set of series (connections gain endpoints as they appear); data updates in place.
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const axis = {
      stroke: cssVar('--fg-muted'),
      grid: { stroke: cssVar('--border'), width: 1 },
      ticks: { stroke: cssVar('--border') },
    };
    const instance = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height: 180,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, lag: { auto: true } },
        axes: [
          axis,
          { ...axis, size: 84, values: (_u, ticks) => ticks.map((v) => spec.unit(v)) },
          ...(series.some((s) => s.scale)
            ? [{ ...axis, scale: 'lag', side: 1 as const, grid: { show: false } }]
            : []),
        ],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            ...(s.scale ? { scale: s.scale } : {}),
          })),
        ],
      },
      [[], ...series.map(() => [])],
      element,
    );
    plot.current = instance;
    const observer = new ResizeObserver(() =>
      instance.setSize({ width: Math.max(200, element.clientWidth), height: 180 }),
    );
    observer.observe(element);
    return () => {
      observer.disconnect();
      instance.destroy();
      plot.current = undefined;
    };
  }, [seriesKey]);

  useEffect(() => {
    const now = samples.at(-1)?.t ?? Date.now() / 1000;
    plot.current?.setData(
      [
        samples.map((s) => s.t),
        ...series.map((s) => samples.map((x) => s.value(x.metrics))),
      ] as uPlot.AlignedData,
      false,
    );
    plot.current?.setScale('x', { min: now - windowMs / 1000, max: now });
  });

  const last = samples.at(-1);
  return (
    <figure class="chart" data-testid={`chart-${spec.id}`} data-points={samples.length}>
      <figcaption>{spec.title}</figcaption>
      <div ref={host} role="img" aria-label={`${spec.title} over the window, ${samples.length} samples`} />
      <ul class="latest" aria-label={`${spec.title}: latest values`}>
        {series.map((s, i) => {
          const value = last ? s.value(last.metrics) : null;
          return (
            <li key={s.label}>
              <span class="swatch" style={{ background: COLORS[i % COLORS.length] }} aria-hidden="true" />{' '}
              {s.label}: {value === null ? '—' : spec.unit(value)}
            </li>
          );
        })}
      </ul>
    </figure>
  );
}
