// The simulator's result.json, loaded from a file here in the browser (nothing is uploaded), and
// its comparisons charted as report.html draws them: times per policy, GPUs allocated over time,
// the queueing-delay CDF, and per-project slowdown.
import { useMemo, useState } from 'react';
import { Chart } from '../components/Chart.js';
import { ErrorBox, Table } from '../components/common.js';
import { type SimResult, allocationLines, parseSimResult, queueCdfLines, timeUnit } from '../lib/sim-result.js';

export default function Simulator() {
  const [r, setR] = useState<SimResult>();
  const [error, setError] = useState<unknown>();
  const load = async (file: File | undefined) => {
    if (!file) return;
    try {
      setR(parseSimResult(await file.text()));
      setError(undefined);
    } catch (e) {
      setError(e);
      setR(undefined);
    }
  };
  const names = r ? Object.keys(r.policies) : [];
  const times = useMemo(() => {
    if (!r) return undefined;
    const keys = [
      ['avgJctS', 'avg JCT'],
      ['p99JctS', 'p99 JCT'],
      ['avgQueueS', 'avg queueing'],
      ['p99QueueS', 'p99 queueing'],
    ] as const;
    const u = timeUnit(Math.max(...names.flatMap((n) => keys.map(([k]) => r.policies[n]![k]))));
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 70, right: 20, top: 40, bottom: 40 },
      xAxis: { type: 'category', data: keys.map(([, l]) => l) },
      yAxis: { type: 'value', name: u.name },
      series: names.map((n) => ({
        name: n,
        type: 'bar',
        data: keys.map(([k]) => +(r.policies[n]![k] / u.div).toFixed(2)),
      })),
    };
  }, [r, names]);
  const slowdown = useMemo(() => {
    if (!r) return undefined;
    const projects = [...new Set(names.flatMap((n) => Object.keys(r.policies[n]!.projects)))].sort();
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 70, right: 20, top: 40, bottom: 80 },
      xAxis: { type: 'category', data: projects, axisLabel: { rotate: 40, fontSize: 10 } },
      yAxis: { type: 'log', name: 'slowdown', min: 1 },
      series: names.map((n) => ({
        name: n,
        type: 'bar',
        data: projects.map((p) => Math.max(1, r.policies[n]!.projects[p]?.avgBoundedSlowdown ?? 1)),
      })),
    };
  }, [r, names]);
  const allocation = useMemo(() => {
    if (!r || Object.keys(r.series).length === 0) return undefined;
    const lines = allocationLines(r);
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 70, right: 30, top: 40, bottom: 50 },
      xAxis: { type: 'value', name: 'hours from the first submission', nameLocation: 'middle', nameGap: 30 },
      yAxis: { type: 'value', name: 'GPUs', max: r.capacityGpus },
      series: lines.map((l, i) => ({
        name: l.name,
        type: 'line',
        showSymbol: false,
        lineStyle: { width: 1.5 },
        data: l.data,
        ...(i === 0
          ? {
              markLine: {
                symbol: 'none',
                label: { formatter: `capacity ${r.capacityGpus}`, position: 'insideEndTop' },
                lineStyle: { color: '#888', type: 'dashed' },
                data: [{ yAxis: r.capacityGpus }],
              },
            }
          : {}),
      })),
    };
  }, [r]);
  const cdf = useMemo(() => {
    if (!r || Object.keys(r.series).length === 0) return undefined;
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 70, right: 30, top: 40, bottom: 50 },
      xAxis: {
        type: 'log',
        name: 'queueing delay (s, log scale; 0 drawn at 1 s)',
        nameLocation: 'middle',
        nameGap: 30,
        min: 1,
      },
      yAxis: { type: 'value', name: 'fraction of jobs', min: 0, max: 1 },
      series: queueCdfLines(r).map((l) => ({
        name: l.name,
        type: 'line',
        step: 'end',
        showSymbol: false,
        data: l.data,
      })),
    };
  }, [r]);
  const wait = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(0));
  return (
    <section aria-labelledby="sim-h">
      <h1 id="sim-h">Simulator</h1>
      <p>
        Load a <code>result.json</code> written by <code>fabrik sim --out DIR</code>; it is read here, not uploaded.
      </p>
      <label>
        Simulation result (result.json){' '}
        <input type="file" accept="application/json,.json" onChange={(e) => void load(e.target.files?.[0])} />
      </label>
      <ErrorBox error={error} />
      {r && times && slowdown && (
        <>
          <h2>
            {r.trace}: {r.jobs} jobs on {r.capacityGpus} GPUs
          </h2>
          <Table
            caption="Policies compared"
            head={[
              'Policy',
              'avg JCT (s)',
              'p99 JCT (s)',
              'avg queue (s)',
              'p99 queue (s)',
              'avg wait (s)',
              'p99 wait (s)',
              'max wait (s)',
              'bounded slowdown',
              'utilization',
              'Jain',
              'preemptions',
              'avg queue vs FIFO',
            ]}
            rows={names.map((n) => {
              const p = r.policies[n]!;
              return [
                n,
                p.avgJctS.toFixed(0),
                p.p99JctS.toFixed(0),
                p.avgQueueS.toFixed(0),
                p.p99QueueS.toFixed(0),
                wait(p.avgWaitS),
                wait(p.p99WaitS),
                wait(p.maxWaitS),
                p.avgBoundedSlowdown.toFixed(2),
                `${(p.utilization * 100).toFixed(1)} %`,
                p.jain.toFixed(3),
                p.preemptions,
                r.ratiosToFifo[n]?.avgQueue !== undefined ? `${r.ratiosToFifo[n]!.avgQueue!.toFixed(3)}×` : '—',
              ];
            })}
          />
          <h2>Completion and queueing times</h2>
          <Chart option={times} summary={`Average and p99 job completion and queueing times of ${names.join(', ')}`} />
          <p>Wait is JCT − run time: queueing before the first start and after each preemption.</p>
          {allocation && cdf && (
            <>
              <h2>GPUs allocated over time</h2>
              <Chart
                option={allocation}
                summary={`Mean GPUs allocated over time by ${names.join(', ')}, against a capacity of ${r.capacityGpus} GPUs`}
              />
              <h2>Queueing delay</h2>
              <Chart
                option={cdf}
                summary={`Cumulative distribution of queueing delay (log scale) of ${names.join(', ')}: ${names
                  .map((n) => `${n} p99 ${r.policies[n]!.p99QueueS.toFixed(0)} s`)
                  .join(', ')}`}
              />
            </>
          )}
          <h2>Average bounded slowdown per project</h2>
          <Chart
            option={slowdown}
            summary="Average bounded slowdown per project and policy, log scale; 1 means never waited"
          />
        </>
      )}
    </section>
  );
}
