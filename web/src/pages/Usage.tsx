// Usage and cost: GPU-hours, tokens, storage, energy and CO2 of the caller's projects from the
// metering API (by day and by pool per project, by project per org), and what it cost: the
// monthly statements and budgets (./Costs.tsx).
import { useEffect, useMemo, useState } from 'react';
import { get } from '../api/client.js';
import { Chart } from '../components/Chart.js';
import { ErrorBox, Table, useProjects } from '../components/common.js';
import type { SessionInfo } from '../session.js';
import { Costs } from './Costs.js';

type Usage = Awaited<ReturnType<typeof get<'/api/v1/projects/{project}/usage'>>>;
type Row = Usage['rows'][number];

/** Whole numbers as they are, small ones with two significant digits (a short job is 0.00042 GPU-hours). */
export const fmt = (x: number, d = 2) =>
  Number.isInteger(x) ? String(x) : Math.abs(x) < 10 ** -d ? x.toPrecision(2) : x.toFixed(d);

function usageRows(caption: string, rows: Row[], first: string) {
  return (
    <Table
      caption={caption}
      head={[first, 'GPU-hours', 'Tokens in', 'Tokens out', 'GB-months', 'Energy (kWh)', 'CO₂ (kg)']}
      rows={rows.map((r) => [
        r.group,
        fmt(r.gpuHours),
        r.tokensIn,
        r.tokensOut,
        fmt(r.gbMonths, 4),
        `${fmt(r.energyKWh, 3)}${r.estimated ? ' (estimated)' : ''}`,
        fmt(r.co2Kg, 3),
      ])}
    />
  );
}

export default function UsagePage({ session }: { session: SessionInfo }) {
  const { projects, error: pe } = useProjects();
  const [range, setRange] = useState('7d');
  const [daily, setDaily] = useState<Map<string, Usage>>(new Map());
  const [pools, setPools] = useState<Map<string, Usage>>(new Map());
  const [orgs, setOrgs] = useState<Map<string, Usage>>(new Map());
  const [errors, setErrors] = useState<unknown[]>([]);
  useEffect(() => {
    if (projects.length === 0) return;
    const errs: unknown[] = [];
    const each = async <T,>(keys: string[], f: (k: string) => Promise<T>) =>
      new Map(
        (
          await Promise.all(
            keys.map((k) =>
              f(k).then(
                (v) => [k, v] as const,
                (e) => {
                  errs.push(e);
                  return undefined;
                },
              ),
            ),
          )
        ).filter((x): x is readonly [string, Awaited<T>] => x !== undefined),
      );
    const orgNames = [...new Set(projects.map((p) => p.split('.')[0]!))];
    (async () => {
      const from = range;
      setDaily(
        await each(projects, (p) =>
          get('/api/v1/projects/{project}/usage', { path: { project: p }, query: { from, by: 'day' } }),
        ),
      );
      setPools(
        await each(projects, (p) =>
          get('/api/v1/projects/{project}/usage', { path: { project: p }, query: { from, by: 'pool' } }),
        ),
      );
      // Org-wide figures only for who may see them (admins, owners, operators): others get 403, shown below.
      setOrgs(
        await each(orgNames, (o) =>
          get('/api/v1/orgs/{org}/usage', { path: { org: o }, query: { from, by: 'project' } }),
        ),
      );
      setErrors(errs);
    })();
  }, [projects, range]);
  const chart = useMemo(() => {
    const days = [...new Set([...daily.values()].flatMap((u) => u.rows.map((r) => r.group.slice(0, 10))))].sort();
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 70, right: 20, top: 40, bottom: 40 },
      xAxis: { type: 'category', data: days },
      yAxis: { type: 'value', name: 'GPU-hours' },
      series: [...daily].map(([p, u]) => ({
        name: p,
        type: 'bar',
        stack: 'gpu',
        data: days.map(
          (d) =>
            +u.rows
              .filter((r) => r.group.startsWith(d))
              .reduce((s, r) => s + r.gpuHours, 0)
              .toFixed(3),
        ),
      })),
    };
  }, [daily]);
  const totals = [...daily].map(([p, u]) => ({ ...u.totals, group: p }));
  return (
    <section aria-labelledby="usage-h">
      <h1 id="usage-h">Usage and cost</h1>
      <p className="hint">
        Metered by the server (GPU-hours of attempts, tokens served, storage, facility energy and CO₂), priced by the
        catalogue in the statements.{session.operator ? '' : ' You see your own projects only.'}
      </p>
      <ErrorBox error={pe} />
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Range{' '}
          <select value={range} onChange={(e) => setRange(e.target.value)}>
            {['24h', '7d', '30d'].map((s) => (
              <option key={s} value={s}>
                last {s}
              </option>
            ))}
          </select>
        </label>
      </form>
      {usageRows('Usage by project', totals, 'Project')}
      <h2>GPU-hours by day</h2>
      <Chart option={chart} summary={`GPU-hours per day and project over the last ${range}`} />
      <h2>By pool</h2>
      {[...pools].map(([p, u]) => (
        <div key={p}>{usageRows(`Usage of ${p} by pool`, u.rows, 'Pool')}</div>
      ))}
      {orgs.size > 0 && <h2>By organisation</h2>}
      {[...orgs].map(([o, u]) => (
        <div key={o}>{usageRows(`Usage of org ${o} by project`, u.rows, 'Project')}</div>
      ))}
      {projects.length > 0 && <Costs projects={projects} />}
      {errors.map((e, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: errors of one load, in order
        <ErrorBox key={i} error={e} />
      ))}
    </section>
  );
}
