// One workload: its status, attempts, events, placement on the floor plan, live logs, cancel.
import { useEffect, useRef, useState } from 'react';
import { ApiError, get, post, raw } from '../api/client.js';
import { ErrorBox, Table, when } from '../components/common.js';
import { FloorPlan, type FloorNode } from '../components/FloorPlan.js';

type Detail = Awaited<ReturnType<typeof load>>;
const load = (project: string, workload: string) =>
  get('/api/v1/projects/{project}/workloads/{workload}', { path: { project, workload } });
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'preempted']);

export function WorkloadDetail({ project, name, operator }: { project: string; name: string; operator: boolean }) {
  const [w, setW] = useState<Detail>();
  const [error, setError] = useState<unknown>();
  const [cancelError, setCancelError] = useState<unknown>();
  useEffect(() => {
    let live = true;
    let timer: number | undefined;
    const tick = () =>
      load(project, name)
        .then((d) => {
          if (!live) return;
          setW(d);
          setError(undefined);
          if (!TERMINAL.has(d.status)) timer = window.setTimeout(tick, 1000);
        })
        .catch((e) => live && setError(e));
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [project, name]);
  const cancel = async () => {
    setCancelError(undefined);
    try {
      setW({
        ...(w as Detail),
        ...(await post('/api/v1/projects/{project}/workloads/{workload}/cancel', {
          path: { project, workload: name },
        })),
      });
    } catch (e) {
      setCancelError(e);
    }
  };
  return (
    <section aria-labelledby="wd-h">
      <h1 id="wd-h">
        Workload {project}/{name}
      </h1>
      <ErrorBox error={error} />
      {w && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd data-testid="workload-status">{w.status}</dd>
            <dt>Reason</dt>
            <dd data-testid="workload-reason">{w.reason}</dd>
            <dt>Message</dt>
            <dd>{w.message || '—'}</dd>
            <dt>Pool / GPUs</dt>
            <dd>
              {w.pool} / {w.gpus} ({w.nodes} × {w.gpusPerNode})
            </dd>
            <dt>Estimated start</dt>
            <dd>{when(w.estimatedStart)}</dd>
            <dt>Submitted / started / finished</dt>
            <dd>
              {when(w.submittedAt)} / {when(w.startedAt)} / {when(w.finishedAt)}
            </dd>
          </dl>
          {!TERMINAL.has(w.status) && (
            <button type="button" onClick={() => void cancel()}>
              Cancel workload
            </button>
          )}
          <ErrorBox error={cancelError} />
          <Placement w={w} operator={operator} />
          <Table
            caption="Attempts"
            head={['#', 'State', 'Nodes', 'Started', 'Ended', 'Exit code', 'End reason', 'Message']}
            rows={w.attemptRecords.map((a) => [
              a.number,
              a.state,
              a.placement.nodes.map((n) => n.node).join(', '),
              when(a.startedAt),
              when(a.endedAt),
              a.exitCode ?? '—',
              a.endReason ?? '—',
              a.message,
            ])}
          />
          <Table
            caption="Events"
            head={['Time', 'Type', 'Reason', 'Message']}
            rows={w.events.map((e) => [when(e.time), e.type, e.reason, e.message])}
          />
          <Logs project={project} name={name} attempts={w.attempts} done={TERMINAL.has(w.status)} />
        </>
      )}
    </section>
  );
}

/** The placement's nodes on the plan of their pod (operators), or on their own (tenants see no fleet). */
function Placement({ w, operator }: { w: Detail; operator: boolean }) {
  const placement = w.placement ?? w.attemptRecords.at(-1)?.placement;
  const [pod, setPod] = useState<FloorNode[]>();
  const podName = placement?.pod;
  useEffect(() => {
    if (!operator || !podName) return;
    get('/api/v1/fleet/nodes', { query: { pod: podName, limit: 1000 } }).then(
      (r) => setPod(r.items.map((n) => ({ ...n, allocatedGpus: 0, project: undefined }))),
      () => setPod(undefined),
    );
  }, [operator, podName]);
  if (!placement) return <p>Not placed yet.</p>;
  const names = new Set(placement.nodes.map((n) => n.node));
  const nodes: FloorNode[] =
    pod ??
    placement.nodes.map((n) => ({
      name: n.node,
      pod: placement.pod,
      rack: n.node,
      pool: w.pool,
      state: 'ready',
      gpuModel: '',
      gpuCount: n.gpuIndexes.length,
      allocatedGpus: 0,
    }));
  const marked = nodes.map((n) => (names.has(n.name) ? { ...n, allocatedGpus: n.gpuCount } : n));
  return (
    <>
      <h2>Placement</h2>
      <p data-testid="placement">
        Pod {placement.pod}: {placement.nodes.map((n) => `${n.node} (GPUs ${n.gpuIndexes.join(',')})`).join('; ')}
      </p>
      <FloorPlan
        nodes={marked}
        mode="allocation"
        highlight={names}
        label={`Pod ${placement.pod} with this workload's nodes outlined`}
        width={600}
      />
    </>
  );
}

/** The latest attempt's log, followed while it runs (the logs API streams with follow=true). */
function Logs({ project, name, attempts, done }: { project: string; name: string; attempts: number; done: boolean }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>();
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (attempts === 0) return;
    const ac = new AbortController();
    setText('');
    (async () => {
      const url = `/api/v1/projects/${encodeURIComponent(project)}/workloads/${encodeURIComponent(name)}/logs?attempt=${attempts}&follow=${!done}`;
      for (let tries = 0; tries < 20 && !ac.signal.aborted; tries++) {
        try {
          const res = await raw('GET', url, undefined, ac.signal);
          const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done: end } = await reader.read();
            if (end) return;
            setText((t) => (t + value).slice(-200_000));
          }
        } catch (e) {
          if (ac.signal.aborted) return;
          // The log appears once the task has started; until then the API says so.
          if (!(e instanceof ApiError && e.status === 404)) setError(e);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
    return () => ac.abort();
  }, [project, name, attempts, done]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: follow the end of the log as text arrives
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);
  return (
    <>
      <h2>Logs</h2>
      <ErrorBox error={error} />
      <section aria-label="Task log">
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
        <pre ref={pre} className="logs" data-testid="logs" tabIndex={0}>
          {text || (attempts === 0 ? 'No attempt yet.' : 'Waiting for output…')}
        </pre>
      </section>
    </>
  );
}
