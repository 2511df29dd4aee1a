// Deployments: replicas per deployment, and each deployment's requests/s, latency (time to first
// byte) and tokens/s per minute from the token-usage API (one call per deployment).
import { useEffect, useMemo, useState } from 'react';
import { get } from '../api/client.js';
import { Chart } from '../components/Chart.js';
import { ErrorBox, Table, useProjects } from '../components/common.js';
import { type DeploymentMinutes, deploymentCharts, minuteLabel } from '../lib/deployment-usage.js';

type Usage = Awaited<ReturnType<typeof usage>>;
const usage = (project: string, since: string, deployment?: string) =>
  get('/api/v1/projects/{project}/usage/tokens', {
    path: { project },
    query: { since, by: 'minute', ...(deployment ? { deployment } : {}) },
  });

export default function Deployments() {
  const [list, setList] = useState<Awaited<ReturnType<typeof get<'/api/v1/deployments'>>>['items']>([]);
  const [error, setError] = useState<unknown>();
  const { projects } = useProjects();
  const [project, setProject] = useState('');
  const [since, setSince] = useState('1h');
  const [u, setU] = useState<Usage>();
  const [perDeployment, setPerDeployment] = useState<DeploymentMinutes[]>([]);
  const chosen = project || list[0]?.project || projects[0] || '';
  useEffect(() => {
    get('/api/v1/deployments').then((r) => setList(r.items), setError);
  }, []);
  const inProject = useMemo(() => list.filter((d) => d.project === chosen), [list, chosen]);
  useEffect(() => {
    if (!chosen) return;
    let stale = false;
    usage(chosen, since).then((r) => !stale && setU(r), setError);
    Promise.all(inProject.map((d) => usage(chosen, since, d.id).then((r) => ({ name: d.name, rows: r.rows })))).then(
      (r) => !stale && setPerDeployment(r),
      setError,
    );
    return () => {
      stale = true;
    };
  }, [chosen, since, inProject]);
  const charts = useMemo(() => deploymentCharts(perDeployment), [perDeployment]);
  const option = useMemo(() => {
    const x = charts.minutes.map(minuteLabel);
    const per = (key: 'requestsPerSec' | 'latencyMs' | 'tokensPerSec', i: number, type: 'line' | 'bar') =>
      charts.series.map((s) => ({
        name: s.name,
        type,
        data: s[key],
        connectNulls: false,
        xAxisIndex: i,
        yAxisIndex: i,
      }));
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: [
        { top: 40, height: 90, left: 60, right: 20 },
        { top: 170, height: 90, left: 60, right: 20 },
        { top: 300, height: 90, left: 60, right: 20 },
      ],
      xAxis: [0, 1, 2].map((i) => ({ type: 'category', data: x, gridIndex: i })),
      yAxis: [
        { type: 'value', name: 'requests/s', gridIndex: 0 },
        { type: 'value', name: 'ms to first byte', gridIndex: 1 },
        { type: 'value', name: 'tokens/s out', gridIndex: 2 },
      ],
      series: [...per('requestsPerSec', 0, 'line'), ...per('latencyMs', 1, 'line'), ...per('tokensPerSec', 2, 'bar')],
    };
  }, [charts]);
  return (
    <section aria-labelledby="dep-h">
      <h1 id="dep-h">Deployments</h1>
      <ErrorBox error={error} />
      <Table
        caption="Deployments"
        head={['Name', 'Project', 'Runtime', 'Model', 'Replicas ready / desired (min–max)', 'GPUs per replica']}
        rows={list.map((d) => [
          d.name,
          d.project,
          d.runtime,
          d.model ? `${d.model.repo}@${d.model.revision}` : (d.modelPath ?? d.upstreamUrl ?? '—'),
          `${d.replicas.ready} / ${d.replicas.desired} (${d.replicas.min}–${d.replicas.max})`,
          d.gpu.perReplica,
        ])}
      />
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Project{' '}
          <select value={chosen} onChange={(e) => setProject(e.target.value)}>
            {[...new Set([...list.map((d) => d.project), ...projects])].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Since{' '}
          <select value={since} onChange={(e) => setSince(e.target.value)}>
            {['30m', '1h', '6h', '24h'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </form>
      {u && (
        <>
          <p>
            {u.totals.requests} requests ({u.totals.errors} errors), {u.totals.tokensOut} tokens out in {chosen} since{' '}
            {since}.
          </p>
          {inProject.length === 0 ? (
            <p>{chosen} has no deployments.</p>
          ) : (
            <Chart
              option={option}
              height={420}
              summary={`Per minute and deployment in ${chosen} since ${since}: ${charts.series
                .map((s) => {
                  const req = perDeployment.find((d) => d.name === s.name)?.rows.reduce((n, r) => n + r.requests, 0);
                  return `${s.name} ${req ?? 0} requests`;
                })
                .join(', ')}; requests/s, mean time to first byte and output tokens/s`}
            />
          )}
        </>
      )}
    </section>
  );
}
