// Queue (pending work with reasons and estimated starts), the workload list, and submitting a
// spec as YAML or JSON.
import { useState } from 'react';
import { get, post } from '../api/client.js';
import { ErrorBox, PageButtons, Table, usePaged, useProjects, when } from '../components/common.js';
import { Link, navigate } from '../router.js';

const listWorkloads = (status: string | undefined, all: boolean) => (cursor: string | undefined) =>
  get('/api/v1/workloads', { query: { cursor, limit: 50, status, all: all || undefined } });

const wlLink = (w: { project: string; name: string }) => (
  <Link to={`/workloads/${encodeURIComponent(w.project)}/${encodeURIComponent(w.name)}`}>{w.name}</Link>
);

export function Queue() {
  const paged = usePaged(listWorkloads('pending', false), []);
  return (
    <section aria-labelledby="queue-h">
      <h1 id="queue-h">Queue</h1>
      <p>Pending workloads in queue order as the API lists them, with why each waits.</p>
      <ErrorBox error={paged.error} />
      <Table
        caption="Pending workloads"
        head={['Workload', 'Project', 'Pool', 'GPUs', 'Priority', 'Reason', 'Message', 'Estimated start', 'Submitted']}
        rows={paged.items.map((w) => [
          wlLink(w),
          w.project,
          w.pool,
          w.gpus,
          w.priority,
          <span className="reason" key="r">
            {w.reason}
          </span>,
          w.message,
          when(w.estimatedStart),
          when(w.submittedAt),
        ])}
      />
      <PageButtons paged={paged as never} label="Queue" />
    </section>
  );
}

export function Workloads() {
  const [status, setStatus] = useState('');
  const [all, setAll] = useState(true);
  const paged = usePaged(listWorkloads(status || undefined, all), [status, all]);
  return (
    <section aria-labelledby="wl-h">
      <h1 id="wl-h">Workloads</h1>
      <p>
        <Link to="/workloads/new">Submit a workload</Link>
      </p>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {['pending', 'running', 'succeeded', 'failed', 'cancelled', 'preempted'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> include ended
        </label>
      </form>
      <ErrorBox error={paged.error} />
      <Table
        caption="Workloads"
        head={['Workload', 'Project', 'Kind', 'Status', 'Reason', 'GPUs', 'Attempts', 'Submitted']}
        rows={paged.items.map((w) => [
          wlLink(w),
          w.project,
          w.kind,
          <span className={`status status-${w.status}`} key="s">
            {w.status}
          </span>,
          w.reason,
          w.gpus,
          w.attempts,
          when(w.submittedAt),
        ])}
      />
      <PageButtons paged={paged as never} label="Workloads" />
    </section>
  );
}

const EXAMPLE = `kind: training
name: my-run
resources: { pool: dev, gpu: 1 }
max_duration: 10m
workdir: examples/train
run: node train.js
env: { STEPS: "50", STEP_DELAY_MS: "20" }
`;

/** YAML or JSON text to a spec object (YAML only loaded when the text is not JSON). */
export async function parseSpecText(text: string): Promise<unknown> {
  const t = text.trim();
  if (t.startsWith('{')) return JSON.parse(t);
  const { parse } = await import('yaml');
  return parse(text);
}

export function SubmitWorkload() {
  const { projects, error: projectsError } = useProjects();
  const [project, setProject] = useState('');
  const [text, setText] = useState(EXAMPLE);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const chosen = project || projects[0] || '';
  const submit = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const spec = await parseSpecText(text);
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec))
        throw new Error('the spec must be a YAML or JSON object');
      const w = await post('/api/v1/projects/{project}/workloads', {
        path: { project: chosen },
        body: spec as Record<string, unknown>,
      });
      navigate(`/workloads/${encodeURIComponent(w.project)}/${encodeURIComponent(w.name)}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="submit-h">
      <h1 id="submit-h">Submit a workload</h1>
      <ErrorBox error={projectsError} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          Project{' '}
          <select value={chosen} onChange={(e) => setProject(e.target.value)}>
            {projects.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label className="block">
          Workload spec (YAML or JSON)
          <textarea value={text} onChange={(e) => setText(e.target.value)} rows={14} spellCheck={false} />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || !chosen}>
          Submit
        </button>
      </form>
    </section>
  );
}
