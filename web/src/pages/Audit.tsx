// Audit entries, and verifying one entry's inclusion proof against the signed checkpoint in the
// browser with the CLI's code (loaded on demand: the proof code stays out of the first bundle).
import { useState } from 'react';
import { get, raw } from '../api/client.js';
import { ErrorBox, PageButtons, Table, usePaged, when } from '../components/common.js';
import type { Verification } from '../audit/verify-proof.js';

export function Audit() {
  const paged = usePaged((cursor) => get('/api/v1/audit/entries', { query: { cursor, limit: 50 } }), []);
  const [result, setResult] = useState<{ seq: number; v: Verification }>();
  const [error, setError] = useState<unknown>();
  const verify = async (seq: number) => {
    setError(undefined);
    setResult(undefined);
    try {
      const [{ verifyReceipt }, receipt, key] = await Promise.all([
        import('../audit/verify-proof.js'),
        get('/api/v1/audit/entries/{seq}/receipt', { path: { seq } }),
        raw('GET', '/audit/key').then((r) => r.text()),
      ]);
      setResult({ seq, v: await verifyReceipt(receipt, key) });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section aria-labelledby="audit-h">
      <h1 id="audit-h">Audit</h1>
      <ErrorBox error={paged.error} />
      <div aria-live="polite">
        <ErrorBox error={error} />
        {result && (
          <div className={result.v.ok ? 'verdict ok' : 'verdict bad'} data-testid="verdict">
            <h2>{result.v.ok ? `Entry ${result.seq} verified` : `Entry ${result.seq} NOT verified`}</h2>
            <ul>
              {result.v.findings.map((f) => (
                <li key={f.check}>
                  {f.ok ? '✓' : '✗'} {f.check}: {f.message}
                </li>
              ))}
            </ul>
          </div>
        )}
      </div>
      <Table
        caption="Audit entries"
        head={['Seq', 'Time', 'Actor', 'Action', 'Resource', 'Outcome', 'Proof']}
        rows={paged.items.map((e) => [
          e.seq,
          when(e.time),
          e.actor.principal,
          e.action,
          e.resource,
          e.outcome,
          <button type="button" key="v" onClick={() => void verify(e.seq)} aria-label={`Verify entry ${e.seq}`}>
            Verify
          </button>,
        ])}
      />
      <PageButtons paged={paged as never} label="Audit entries" />
    </section>
  );
}
