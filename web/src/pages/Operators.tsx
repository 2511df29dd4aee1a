// Operators: tenants (orgs), quotas, the price catalogue, nodes with cordon / drain / uncordon,
// break-glass grants. Tenants see the parts the API answers for them (orgs and quotas they can see).
import { useEffect, useState } from 'react';
import { get, post } from '../api/client.js';
import { ErrorBox, PageButtons, Table, usePaged, when } from '../components/common.js';
import type { SessionInfo } from '../session.js';

export default function Operators({ session }: { session: SessionInfo }) {
  const orgs = usePaged((cursor) => get('/api/v1/orgs', { query: { cursor, limit: 50 } }), []);
  const quotas = usePaged((cursor) => get('/api/v1/quotas', { query: { cursor, limit: 50 } }), []);
  const [org, setOrg] = useState<string>();
  return (
    <section aria-labelledby="ops-h">
      <h1 id="ops-h">Operators</h1>
      <h2>Tenants</h2>
      <ErrorBox error={orgs.error} />
      <Table
        caption="Organisations"
        head={['Org', 'Display name', 'Residency', 'Status', 'Created', 'Break-glass']}
        rows={orgs.items.map((o) => [
          o.name,
          o.displayName,
          o.residency,
          o.status,
          when(o.createdAt),
          <button
            type="button"
            key="b"
            className="linklike"
            onClick={() => setOrg(o.name)}
            aria-label={`Break-glass grants of ${o.name}`}
          >
            grants
          </button>,
        ])}
      />
      <PageButtons paged={orgs as never} label="Organisations" />
      {org && <BreakGlass org={org} />}
      <h2>Quotas</h2>
      <ErrorBox error={quotas.error} />
      <Table
        caption="Quotas (GPUs)"
        head={['Project', 'Pool', 'Guaranteed', 'Limit', 'Updated']}
        rows={quotas.items.map((q) => [q.project, q.pool, q.guaranteed, q.limit, when(q.updatedAt)])}
      />
      <PageButtons paged={quotas as never} label="Quotas" />
      <Prices />
      {session.operator && <Nodes />}
    </section>
  );
}

function BreakGlass({ org }: { org: string }) {
  const grants = usePaged(
    (cursor) => get('/api/v1/orgs/{org}/break-glass', { path: { org }, query: { cursor, limit: 50 } }),
    [org],
  );
  return (
    <>
      <h3>Break-glass grants of {org}</h3>
      <ErrorBox error={grants.error} />
      <Table
        caption={`Break-glass grants of ${org}`}
        head={['Id', 'Operator', 'Reason', 'State', 'Created', 'Expires']}
        rows={grants.items.map((g) => [g.id, g.principal, g.reason, g.state, when(g.createdAt), when(g.expiresAt)])}
      />
      <PageButtons paged={grants as never} label="Break-glass grants" />
    </>
  );
}

function Nodes() {
  const [state, setState] = useState('');
  const nodes = usePaged(
    (cursor) => get('/api/v1/fleet/nodes', { query: { cursor, limit: 50, state: state || undefined } }),
    [state],
  );
  const [error, setError] = useState<unknown>();
  const act = async (node: string, verb: 'cordon' | 'drain' | 'uncordon') => {
    setError(undefined);
    try {
      const path = `/api/v1/fleet/nodes/{node}/${verb}` as '/api/v1/fleet/nodes/{node}/cordon';
      await post(path, { path: { node } });
      nodes.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h2>Nodes</h2>
      <label>
        State{' '}
        <select value={state} onChange={(e) => setState(e.target.value)}>
          <option value="">any</option>
          {['ready', 'cordoned', 'draining', 'down'].map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      <ErrorBox error={nodes.error ?? error} />
      <Table
        caption="Nodes"
        head={['Node', 'Pool', 'GPUs', 'Pod', 'Rack', 'State', 'Actions']}
        rows={nodes.items.map((n) => [
          n.name,
          n.pool,
          `${n.gpuCount} × ${n.gpuModel}`,
          n.pod,
          n.rack,
          <span key="s" data-testid={`state-${n.name}`}>
            {n.state}
          </span>,
          <span key="a" className="actions">
            {n.state === 'ready' ? (
              <>
                <button type="button" onClick={() => void act(n.name, 'cordon')} aria-label={`Cordon ${n.name}`}>
                  Cordon
                </button>
                <button type="button" onClick={() => void act(n.name, 'drain')} aria-label={`Drain ${n.name}`}>
                  Drain
                </button>
              </>
            ) : (
              <button type="button" onClick={() => void act(n.name, 'uncordon')} aria-label={`Uncordon ${n.name}`}>
                Uncordon
              </button>
            )}
          </span>,
        ])}
      />
      <PageButtons paged={nodes as never} label="Nodes" />
    </>
  );
}

function Prices() {
  const [items, setItems] = useState<Awaited<ReturnType<typeof get<'/api/v1/prices'>>>['items']>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    get('/api/v1/prices', { query: { at: new Date().toISOString() } }).then((r) => setItems(r.items), setError);
  }, []);
  return (
    <>
      <h2>Prices</h2>
      <ErrorBox error={error} />
      <Table
        caption="Prices valid now"
        head={['Item', 'Pool', 'Priority', 'Deployment', 'Model', 'Price', 'Valid from', 'Valid to']}
        rows={items.map((p) => [
          p.item,
          p.pool || 'any',
          p.priority || 'any',
          p.deployment || 'any',
          p.model || 'any',
          `${p.unitPrice} ${p.currency} per ${p.unit}`,
          when(p.validFrom),
          when(p.validTo),
        ])}
      />
    </>
  );
}
