// Simulation output: result.json (numbers for scripts and the bench) and a self-contained HTML
// report whose charts are ECharts rendered on the server to inline SVG (no script, no network).
import * as echarts from 'echarts';
import type { PolicyName } from '../scheduler/types.js';
import type { PolicyMetrics } from './metrics.js';
import type { SimulationResult } from './simulation.js';

/** The bench's per-policy keys first, then the rest of what the simulation measured. */
export function policyJson(m: PolicyMetrics): Record<string, unknown> {
  const { avgJctS, p99JctS, avgQueueS, p99QueueS, avgBoundedSlowdown, utilization, jain, preemptions, ...rest } = m;
  return { avgJctS, p99JctS, avgQueueS, p99QueueS, avgBoundedSlowdown, utilization, jain, preemptions, ...rest };
}

/** Each policy's averages and p99s divided by FIFO's: below 1 is better than FIFO. */
export function ratiosToFifo(
  policies: Partial<Record<PolicyName, PolicyMetrics>>,
): Record<string, Record<string, number>> {
  const fifo = policies.fifo;
  const out: Record<string, Record<string, number>> = {};
  if (!fifo) return out;
  const div = (a: number, b: number): number => (b === 0 ? (a === 0 ? 1 : Number.POSITIVE_INFINITY) : a / b);
  for (const [name, m] of Object.entries(policies) as [PolicyName, PolicyMetrics][]) {
    out[name] = {
      avgJct: div(m.avgJctS, fifo.avgJctS),
      p99Jct: div(m.p99JctS, fifo.p99JctS),
      avgQueue: div(m.avgQueueS, fifo.avgQueueS),
      p99Queue: div(m.p99QueueS, fifo.p99QueueS),
      avgBoundedSlowdown: div(m.avgBoundedSlowdown, fifo.avgBoundedSlowdown),
    };
  }
  return out;
}

export function resultJson(r: SimulationResult): Record<string, unknown> {
  const policies: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(r.policies) as [PolicyName, PolicyMetrics][]) policies[name] = policyJson(m);
  return {
    trace: r.trace,
    jobs: r.jobs,
    rejected: r.rejected,
    ...(r.rejectedExamples.length > 0 ? { rejectedExamples: r.rejectedExamples } : {}),
    pools: r.pools,
    capacityGpus: r.capacityGpus,
    traceLoad: r.traceLoad,
    load: r.load,
    workLoad: r.workLoad,
    loadMode: r.loadMode,
    quotaRule: r.quotaRule,
    policies,
    ratiosToFifo: ratiosToFifo(r.policies),
    // What the report's time charts draw (GPUs allocated over time, the queueing-delay CDF), so
    // the console's simulator page can draw them from this file alone.
    series: r.series,
  };
}

const COLORS: Record<PolicyName, string> = {
  fabrik: '#0b6e4f',
  fifo: '#c0392b',
  'fifo-backfill': '#e08e0b',
  'srtf-oracle': '#5b6ee1',
  'slurm-multifactor': '#8e44ad',
  'tiresias-las': '#16a2b8',
};

function svgChart(option: echarts.EChartsCoreOption, width = 900, height = 360): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption({ animation: false, textStyle: { fontFamily: 'system-ui, sans-serif' }, ...option });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return svg;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 95 s, 3.2 h, 4.1 d: what a person reads in a table. */
export function humanSeconds(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  return inUnit(s, unitOf(s));
}

export interface TimeUnit {
  readonly name: 's' | 'min' | 'h' | 'd';
  readonly seconds: number;
}

const UNITS: readonly TimeUnit[] = [
  { name: 's', seconds: 1 },
  { name: 'min', seconds: 60 },
  { name: 'h', seconds: 3600 },
  { name: 'd', seconds: 86_400 },
];

/** The unit humanSeconds picks for one value: s below 2 min, min below 2 h, h below 2 days, else d. */
export function unitOf(s: number): TimeUnit {
  if (s < 120) return UNITS[0];
  if (s < 7200) return UNITS[1];
  if (s < 172_800) return UNITS[2];
  return UNITS[3];
}

/**
 * One unit for a column (or a row) of durations, so that they compare at a glance: the unit of its
 * smallest positive value (larger ones get more digits rather than a different unit).
 */
export function commonUnit(values: readonly number[]): TimeUnit {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  return positive.length === 0 ? UNITS[0] : unitOf(Math.min(...positive));
}

/** `s` in `unit`: 1 decimal below 100, none above, thousands grouped (12.5 min, 3,456 min). */
export function inUnit(s: number, unit: TimeUnit): string {
  if (!Number.isFinite(s)) return String(s);
  if (s === 0) return `0 ${unit.name}`;
  const x = s / unit.seconds;
  const digits = unit.name === 's' ? (x < 10 ? 1 : 0) : x < 100 ? 1 : 0;
  return `${x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit.name}`;
}

// Title on the first line, the legend on its own line below it (it used to be drawn over the
// title), the plot below both.
const TITLE = { left: 'center', top: 6, textStyle: { fontSize: 14 } } as const;
const LEGEND = { top: 34, left: 'center', itemGap: 24 } as const;
const GRID_TOP = 84;

function allocationChart(r: SimulationResult): string {
  const series = (Object.entries(r.series) as [PolicyName, NonNullable<SimulationResult['series'][PolicyName]>][]).map(
    ([name, s]) => ({
      name,
      type: 'line',
      showSymbol: false,
      lineStyle: { width: 1.5 },
      color: COLORS[name],
      data: s.allocation.t.map((t, i) => [+(t / 3600).toFixed(3), Math.round(s.allocation.gpus[i])]),
    }),
  );
  if (series.length > 0) {
    (series[0] as Record<string, unknown>).markLine = {
      symbol: 'none',
      // Inside the plot, above the line: at its end (the default) the label ran off the chart ("capa").
      label: { formatter: `capacity ${r.capacityGpus}`, position: 'insideEndTop' },
      lineStyle: { color: '#888', type: 'dashed' },
      data: [{ yAxis: r.capacityGpus }],
    };
  }
  return svgChart({
    title: { text: 'GPUs allocated over time', ...TITLE },
    legend: LEGEND,
    grid: { left: 70, right: 30, top: GRID_TOP, bottom: 50 },
    xAxis: { type: 'value', name: 'hours from the first submission', nameLocation: 'middle', nameGap: 30 },
    yAxis: { type: 'value', name: 'GPUs', max: r.capacityGpus },
    series,
  });
}

function queueCdfChart(r: SimulationResult): string {
  const series = (Object.entries(r.series) as [PolicyName, NonNullable<SimulationResult['series'][PolicyName]>][]).map(
    ([name, s]) => ({
      name,
      type: 'line',
      step: 'end',
      showSymbol: false,
      color: COLORS[name],
      // Log axis: a zero wait is drawn at 1 s.
      data: s.queueCdf.map(([q, f]) => [Math.max(1, q), +f.toFixed(4)]),
    }),
  );
  return svgChart({
    title: { text: 'CDF of queueing delay', ...TITLE },
    legend: LEGEND,
    grid: { left: 70, right: 30, top: GRID_TOP, bottom: 50 },
    xAxis: {
      type: 'log',
      name: 'queueing delay (s, log scale; 0 drawn at 1 s)',
      nameLocation: 'middle',
      nameGap: 30,
      min: 1,
    },
    yAxis: { type: 'value', name: 'fraction of jobs', min: 0, max: 1 },
    series,
  });
}

function projectSlowdownChart(r: SimulationResult): string {
  const names = Object.keys(r.policies) as PolicyName[];
  const projects = [...new Set(names.flatMap((p) => Object.keys(r.policies[p]!.projects)))].sort();
  return svgChart(
    {
      title: { text: 'Average bounded slowdown per project (log scale; 1 = never waited)', ...TITLE },
      legend: LEGEND,
      grid: { left: 70, right: 30, top: GRID_TOP, bottom: 90 },
      xAxis: { type: 'category', data: projects, axisLabel: { rotate: 40, fontSize: 10 } },
      yAxis: { type: 'log', name: 'slowdown', min: 1 },
      series: names.map((p) => ({
        name: p,
        type: 'bar',
        // Bars grow from 1 on the log axis: a slowdown of 1 (or 1.01) had no bar at all.
        barMinHeight: 3,
        color: COLORS[p],
        data: projects.map((pr) => +Math.max(1, r.policies[p]!.projects[pr]?.avgBoundedSlowdown ?? 1).toFixed(3)),
      })),
    },
    900,
    380,
  );
}

function metricTable(r: SimulationResult): string {
  const names = Object.keys(r.policies) as PolicyName[];
  const ratios = ratiosToFifo(r.policies);
  // Durations: one unit per row (the policies are the columns), e.g. all in min, not min and d.
  const time = (get: (m: PolicyMetrics) => number): ((m: PolicyMetrics) => string) => {
    const unit = commonUnit(names.map((n) => get(r.policies[n]!)));
    return (m) => inUnit(get(m), unit);
  };
  const rows: [string, (m: PolicyMetrics, p: PolicyName) => string][] = [
    ['average JCT', time((m) => m.avgJctS)],
    ['p50 JCT', time((m) => m.p50JctS)],
    ['p99 JCT', time((m) => m.p99JctS)],
    ['average queueing delay', time((m) => m.avgQueueS)],
    ['p50 queueing delay', time((m) => m.p50QueueS)],
    ['p99 queueing delay', time((m) => m.p99QueueS)],
    ['max queueing delay (starvation bound)', time((m) => m.maxQueueS)],
    ['average wait (JCT − run time, incl. after preemption)', time((m) => m.avgWaitS)],
    ['p99 wait', time((m) => m.p99WaitS)],
    ['max wait', time((m) => m.maxWaitS)],
    ['average bounded slowdown', (m) => m.avgBoundedSlowdown.toFixed(2)],
    ['avg queueing delay vs FIFO', (_m, p) => (ratios[p] ? `${ratios[p].avgQueue.toFixed(3)}×` : '-')],
    ['avg JCT vs FIFO', (_m, p) => (ratios[p] ? `${ratios[p].avgJct.toFixed(3)}×` : '-')],
    ['utilization (arrival window)', (m) => `${(m.utilization * 100).toFixed(1)} %`],
    ["Jain's index (1 / project slowdown)", (m) => m.jain.toFixed(3)],
    ['preemptions', (m) => String(m.preemptions)],
    ['jobs finished / never started', (m) => `${m.finished} / ${m.neverStarted}`],
    [
      'multi-node placements by leaf switches spanned',
      // "none" for every policy used to mean: the trace has no multi-node job (Philly's largest
      // asks 8 GPUs, one node), not that placements went unrecorded.
      (m) =>
        Object.keys(m.leafSwitches).length > 0
          ? Object.entries(m.leafSwitches)
              .map(([k, v]) => `${k} ${k === '1' ? 'leaf' : 'leaves'}: ${v}`)
              .join(', ')
          : m.multiNodeJobs === 0
            ? 'no multi-node jobs in the trace'
            : 'none placed',
    ],
    ['jobs simulated / wall second', (m) => Math.round(m.jobsPerSec).toLocaleString('en-US')],
    ['simulated hours / wall second', (m) => m.simHoursPerSec.toFixed(0)],
  ];
  const head = `<tr><th>metric</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      ([label, f]) =>
        `<tr><td>${esc(label)}</td>${names.map((n) => `<td>${esc(f(r.policies[n]!, n))}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table>${head}\n${body}</table>`;
}

export function renderReport(r: SimulationResult, generatedBy = 'fabrik sim'): string {
  const load =
    r.loadMode === 'none'
      ? `${(r.load * 100).toFixed(1)} % (the trace's own timing)`
      : `${(r.load * 100).toFixed(1)} % reached by ${r.loadMode} (the trace as given: ${(r.traceLoad * 100).toFixed(2)} %)`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fabrik simulation: ${esc(r.trace)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5rem 0; }
.note { color: #555; font-size: 13px; }
</style></head>
<body>
<h1>fabrik simulation</h1>
<p>Trace <b>${esc(r.trace)}</b>: ${r.jobs} jobs simulated${r.rejected > 0 ? `, ${r.rejected} rejected as impossible on this fleet` : ''}.
Pools ${esc(r.pools.join(', '))}, ${r.capacityGpus} GPUs. Offered load: <b>${esc(load)}</b>.
Quotas: ${r.quotaRule === 'tenants-file' ? 'from the tenants file' : 'guaranteed = floor(share of the trace’s GPU-hours × pool GPUs), limit = pool GPUs'}.</p>
${metricTable(r)}
<p class="note">Offered load = GPU-seconds asked for inside the arrival window (each job as if started on arrival) / (GPUs × window).
JCT = end − submit; queueing delay = first start − submit; bounded slowdown = JCT / max(run time, 10 s);
utilization over the arrival window; Jain’s index over projects of 1 / average bounded slowdown.
srtf-oracle knows true run times: a bound, not a deployable policy.
slurm-multifactor: Slurm’s multifactor priority (age, fair share, job size) with backfill within bf_window, no preemption;
tiresias-las: Tiresias’ discretized 2D-LAS (attained GPU-seconds, two queues, preemption, promotion after STARVELIMIT); docs/simulator.md.</p>
<figure>${allocationChart(r)}</figure>
<figure>${queueCdfChart(r)}</figure>
<figure>${projectSlowdownChart(r)}</figure>
<p class="note">Generated by ${esc(generatedBy)}.</p>
</body></html>
`;
}
