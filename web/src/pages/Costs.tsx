// Cost on the Usage page: each visible org's statement of the month (lines priced from the
// catalogue; the current month provisional) and each project's monthly budget with its spend.
import { useEffect, useState } from 'react';
import { ApiError, get } from '../api/client.js';
import { ErrorBox, Table } from '../components/common.js';

type Statement = Awaited<ReturnType<typeof get<'/api/v1/orgs/{org}/statements/{month}'>>>;
type Budget = Awaited<ReturnType<typeof get<'/api/v1/projects/{project}/budget'>>>;

/** YYYY-MM of a date, UTC. */
export function monthOf(d: Date): string {
  return d.toISOString().slice(0, 7);
}

export function Costs({ projects }: { projects: string[] }) {
  const [month, setMonth] = useState(() => monthOf(new Date()));
  const [statements, setStatements] = useState<[string, Statement | ApiError][]>([]);
  const [budgets, setBudgets] = useState<[string, Budget | undefined][]>([]);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const orgs = [...new Set(projects.map((p) => p.split('.')[0]!))];
    Promise.all(
      orgs.map((org) =>
        get('/api/v1/orgs/{org}/statements/{month}', { path: { org, month }, query: { format: 'json' } }).then(
          (s) => [org, s] as [string, Statement],
          (e) => [org, e] as [string, ApiError],
        ),
      ),
    ).then(setStatements, setError);
    Promise.all(
      projects.map((project) =>
        get('/api/v1/projects/{project}/budget', { path: { project } }).then(
          (b) => [project, b] as [string, Budget],
          (e) => {
            // No budget set is a 404: say so in the table, not as an error.
            if (e instanceof ApiError && e.status === 404) return [project, undefined] as [string, undefined];
            throw e;
          },
        ),
      ),
    ).then(setBudgets, setError);
  }, [projects, month]);
  return (
    <>
      <h2>Cost</h2>
      <label>
        Month <input type="month" value={month} onChange={(e) => e.target.value && setMonth(e.target.value)} />
      </label>
      <ErrorBox error={error} />
      {statements.map(([org, s]) =>
        s instanceof ApiError ? (
          <div key={org}>
            <h3>Statement of {org}</h3>
            <ErrorBox error={s} />
          </div>
        ) : (
          <div key={org}>
            <h3>
              Statement of {org}, {s.month}: {s.totals.amount} {s.currency}
              {s.provisional ? ' (provisional)' : ''}
            </h3>
            <Table
              caption={`Cost of ${org} by project, ${s.month}`}
              head={['Project', `Amount (${s.currency})`]}
              rows={s.projects.map((p) => [p.project, p.amount])}
            />
            <Table
              caption={`Statement lines of ${org}, ${s.month}`}
              head={['Project', 'Item', 'Description', 'Quantity', 'Unit price', 'Amount']}
              rows={s.lines.map((l) => [
                l.project,
                l.item,
                l.description,
                `${+l.quantity.toFixed(4)} ${l.unit}`,
                l.unitPrice ?? 'no price',
                l.amount,
              ])}
            />
          </div>
        ),
      )}
      <Table
        caption="Monthly budgets"
        head={['Project', 'Budget', 'Spent this month', 'Used', 'Action at the limit', 'Alerts sent']}
        rows={budgets.map(([p, b]) =>
          b
            ? [
                p,
                `${b.amount} ${b.unit}`,
                `${+b.spent.toFixed(2)} ${b.unit}`,
                b.percent === null ? '—' : `${b.percent.toFixed(1)} %${b.exceeded ? ' (exceeded)' : ''}`,
                b.action,
                b.alerted.map((t) => `${t} %`).join(', ') || 'none',
              ]
            : [p, 'no budget', '—', '—', '—', '—'],
        )}
      />
    </>
  );
}
