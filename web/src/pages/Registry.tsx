// Models and datasets: a project's repos, their versions, a version's card, signatures, files and
// the lineage graph (commits, the attempts that produced them, deployments serving them).
import { useEffect, useMemo, useState } from 'react';
import { get } from '../api/client.js';
import { Chart } from '../components/Chart.js';
import { ErrorBox, PageButtons, Table, usePaged, useProjects, when } from '../components/common.js';

type Kind = 'models' | 'datasets';
// Datasets answer the same shapes as models: one typed path stands for both.
const P = <T extends string>(kind: Kind, t: T) => t.replace('/models', `/${kind}`) as T;

export default function Registry() {
  const { projects, error: pe } = useProjects();
  const [project, setProject] = useState('');
  const [kind, setKind] = useState<Kind>('models');
  const [repo, setRepo] = useState<string>();
  const [rev, setRev] = useState<string>();
  const chosen = project || projects[0] || '';
  /** A new project, kind or repo: what was picked below it no longer applies. */
  const pick = (f: () => void, keepRepo = false) => {
    f();
    if (!keepRepo) setRepo(undefined);
    setRev(undefined);
  };
  const repos = usePaged(
    (cursor) =>
      chosen
        ? get(P(kind, '/api/v1/projects/{project}/models'), { path: { project: chosen }, query: { cursor, limit: 50 } })
        : Promise.resolve({ items: [], nextCursor: null }),
    [chosen, kind],
  );
  return (
    <section aria-labelledby="reg-h">
      <h1 id="reg-h">Models and datasets</h1>
      <ErrorBox error={pe} />
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Project{' '}
          <select value={chosen} onChange={(e) => pick(() => setProject(e.target.value))}>
            {projects.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => pick(() => setKind(e.target.value as Kind))}>
            <option value="models">models</option>
            <option value="datasets">datasets</option>
          </select>
        </label>
      </form>
      <ErrorBox error={repos.error} />
      <Table
        caption={`${kind === 'models' ? 'Models' : 'Datasets'} in ${chosen || '—'}`}
        head={['Name', 'Latest version', 'Summary', 'Updated']}
        rows={repos.items.map((r) => [
          <button type="button" key="n" className="linklike" onClick={() => pick(() => setRepo(r.name), true)}>
            {r.name}
          </button>,
          r.latest ? `#${r.latest.seq} ${r.latest.id.slice(0, 12)}` : '—',
          r.latest?.summary ?? '',
          when(r.updatedAt),
        ])}
      />
      <PageButtons paged={repos as never} label="Repositories" />
      {repo && <Versions project={chosen} kind={kind} repo={repo} onPick={setRev} />}
      {repo && rev && <Version project={chosen} kind={kind} repo={repo} rev={rev} />}
    </section>
  );
}

function Versions({
  project,
  kind,
  repo,
  onPick,
}: {
  project: string;
  kind: Kind;
  repo: string;
  onPick(rev: string): void;
}) {
  const versions = usePaged(
    (cursor) =>
      get(P(kind, '/api/v1/projects/{project}/models/{name}/versions'), {
        path: { project, name: repo },
        query: { cursor, limit: 20 },
      }),
    [project, kind, repo],
  );
  return (
    <>
      <h2>Versions of {repo}</h2>
      <ErrorBox error={versions.error} />
      <Table
        caption={`Versions of ${repo}`}
        head={['#', 'Commit', 'Summary', 'Files', 'Bytes', 'Produced by', 'Created']}
        rows={versions.items.map((v) => [
          v.seq,
          <button type="button" key="c" className="linklike" onClick={() => onPick(v.id)}>
            {v.id.slice(0, 12)}
          </button>,
          v.summary,
          v.files,
          v.bytes,
          v.producer ? `${v.producer.workloadId} attempt ${v.producer.attempt}` : '—',
          when(v.createdAt),
        ])}
      />
      <PageButtons paged={versions as never} label="Versions" />
    </>
  );
}

function Version({ project, kind, repo, rev }: { project: string; kind: Kind; repo: string; rev: string }) {
  const [v, setV] =
    useState<Awaited<ReturnType<typeof get<'/api/v1/projects/{project}/models/{name}/versions/{rev}'>>>>();
  const [lineage, setLineage] =
    useState<Awaited<ReturnType<typeof get<'/api/v1/projects/{project}/models/{name}/versions/{rev}/lineage'>>>>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const path = { project, name: repo, rev };
    get(P(kind, '/api/v1/projects/{project}/models/{name}/versions/{rev}'), { path }).then(setV, setError);
    get(P(kind, '/api/v1/projects/{project}/models/{name}/versions/{rev}/lineage'), { path, query: { depth: 5 } }).then(
      setLineage,
      setError,
    );
  }, [project, kind, repo, rev]);
  const option = useMemo(() => {
    if (!lineage) return undefined;
    const byDepth = new Map<number, number>();
    const nodes = lineage.nodes.map((n) => {
      const k = byDepth.get(n.depth) ?? 0;
      byDepth.set(n.depth, k + 1);
      return {
        id: n.key,
        name: n.label,
        x: n.depth * 220,
        y: k * 60,
        symbolSize: n.key === lineage.root ? 22 : 14,
        category: ['commit', 'attempt', 'deployment'].indexOf(n.kind),
      };
    });
    return {
      tooltip: {},
      legend: { data: ['commit', 'attempt', 'deployment'] },
      series: [
        {
          type: 'graph',
          layout: 'none',
          roam: true,
          label: { show: true, position: 'right', fontSize: 11 },
          edgeSymbol: ['none', 'arrow'],
          categories: [{ name: 'commit' }, { name: 'attempt' }, { name: 'deployment' }],
          data: nodes,
          links: lineage.edges.map((e) => ({ source: e.from, target: e.to })),
        },
      ],
    };
  }, [lineage]);
  return (
    <>
      <h2>Version {rev.slice(0, 12)}</h2>
      <ErrorBox error={error} />
      {v && (
        <dl className="facts">
          <dt>Signatures</dt>
          <dd>
            {v.verification.ok ? '✓ platform signature verified' : `✗ ${v.verification.reason ?? 'not verified'}`} ·{' '}
            {v.signatures.map((s) => `${s.keyid}${s.platform ? ' (platform)' : ''}`).join(', ') || 'none'}
          </dd>
          <dt>Card</dt>
          <dd>
            {v.card
              ? [
                  v.card.license && `license ${v.card.license}`,
                  v.card.baseModel?.length && `base ${v.card.baseModel.join(', ')}`,
                  v.card.datasets?.length && `datasets ${v.card.datasets.join(', ')}`,
                  v.card.pipelineTag,
                ]
                  .filter(Boolean)
                  .join(' · ') || 'no structured fields'
              : 'no model card'}
          </dd>
          <dt>Formats</dt>
          <dd>
            {v.formatsSummary.formats.join(', ') || '—'}
            {v.formatsSummary.parameters ? ` · ${v.formatsSummary.parameters.toLocaleString('en')} parameters` : ''}
          </dd>
          <dt>Files</dt>
          <dd>{v.files.map((f) => `${f.path} (${f.size} B)`).join(', ')}</dd>
        </dl>
      )}
      {option && lineage && (
        <Chart
          option={option}
          summary={`Lineage of ${repo}: ${lineage.nodes.map((n) => `${n.kind} ${n.label}`).join('; ')}`}
        />
      )}
    </>
  );
}
