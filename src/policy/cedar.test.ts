// The Cedar layer: the default policies compile against the schema; problems come back with line
// and column; decisions fail closed; regions are read for their country.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies, decide } from './cedar.js';
import { DEFAULT_POLICIES } from './default-policies.js';
import { decideOperatorAccess, decidePlacement, decideStorage, jurisdictionOf } from './sovereignty.js';

const compiled = () => {
  const c = compilePolicies(DEFAULT_POLICIES);
  assert.ok(c.ok, JSON.stringify(!c.ok && c.problems));
  return c.policies;
};
const subject = (residency: string, classification = 'internal') => ({
  org: 'acme',
  project: 'acme.train',
  residency,
  classification,
  kind: 'training',
});
const node = (region: string, exclusive = false) => ({ region, pool: 'b200', gpuModel: 'B200', exclusive });

describe('sovereignty policies (Cedar)', () => {
  it('compiles the defaults, each policy known by its @id, hashed', () => {
    const p = compiled();
    assert.ok(p.ids.includes('residency-de') && p.ids.includes('operator-break-glass'));
    assert.match(p.hash, /^[0-9a-f]{64}$/);
    const again = compilePolicies(DEFAULT_POLICIES);
    assert.equal(again.ok ? again.policies.hash : '', p.hash);
  });

  it('reads countries from region names', () => {
    assert.deepEqual(jurisdictionOf('eu-de-muc1'), { country: 'de', inEU: true });
    assert.deepEqual(jurisdictionOf('de-fra-2'), { country: 'de', inEU: true });
    assert.deepEqual(jurisdictionOf('eu-fr-par1'), { country: 'fr', inEU: true });
    assert.deepEqual(jurisdictionOf('ch-zrh1'), { country: 'ch', inEU: false });
    assert.deepEqual(jurisdictionOf('local'), { country: '', inEU: false });
    assert.deepEqual(jurisdictionOf('slurm'), { country: '', inEU: false });
  });

  it('decides placement by residency and classification, naming the forbidding policies', () => {
    const p = compiled();
    assert.equal(decidePlacement(p, subject('de'), node('eu-de-muc1')).allowed, true);
    const fr = decidePlacement(p, subject('de'), node('eu-fr-par1'));
    assert.equal(fr.allowed, false);
    assert.deepEqual(fr.policyIds, ['residency-de']);
    assert.equal(fr.policyHash, p.hash);
    assert.equal(decidePlacement(p, subject('eu'), node('eu-fr-par1')).allowed, true);
    assert.deepEqual(decidePlacement(p, subject('eu'), node('ch-zrh1')).policyIds, ['residency-eu']);
    // A region that names no country is nowhere: residency-bound work never goes there.
    assert.equal(decidePlacement(p, subject('de'), node('local')).allowed, false);
    assert.deepEqual(decidePlacement(p, subject('de', 'restricted'), node('eu-de-muc1')).policyIds, [
      'restricted-exclusive',
    ]);
    assert.equal(decidePlacement(p, subject('de', 'restricted'), node('eu-de-muc1', true)).allowed, true);
    assert.equal(decidePlacement(p, subject('de', 'confidential'), node('eu-de-muc1')).allowed, true);
    assert.equal(decidePlacement(p, subject('de', 'confidential'), node('eu-fr-par1')).allowed, false);
  });

  it('decides storage by residency and operator access by break-glass', () => {
    const p = compiled();
    const de = { name: 'acme', residency: 'de' };
    assert.equal(decideStorage(p, de, 'eu-de-fra1').allowed, true);
    assert.deepEqual(decideStorage(p, de, 'eu-fr-par1').policyIds, ['storage-residency-de']);
    assert.equal(decideStorage(p, { name: 'x', residency: 'eu' }, 'eu-fr-par1').allowed, true);
    assert.equal(decideOperatorAccess(p, 'user:ops', de, 'logs', false).allowed, false);
    const open = decideOperatorAccess(p, 'user:ops', de, 'secrets', true);
    assert.equal(open.allowed, true);
    assert.deepEqual(open.policyIds, ['operator-break-glass']);
  });

  it('fails closed: a request the schema does not allow, or a policy that errors, is a deny', () => {
    const p = compiled();
    const bad = decide(p, {
      principal: { type: 'Operator', id: 'o', attrs: {} },
      action: 'access',
      resource: { type: 'TenantData', id: 't', attrs: { org: 'a', residency: 'de', kind: 'logs' } },
    });
    assert.equal(bad.allowed, false);
    assert.ok(bad.error);
    // Cedar skips a policy that errors at evaluation (the permit alone would allow); we deny instead.
    const c = compilePolicies(`@id("all") permit (principal is Workload, action == Action::"place", resource is Node);
@id("boom") forbid (principal is Workload, action == Action::"place", resource is Node)
when { 9223372036854775807 + 1 > 0 };`);
    assert.ok(c.ok);
    const v = decidePlacement(c.policies, subject('de'), node('eu-de-muc1'));
    assert.equal(v.allowed, false);
    assert.deepEqual(v.policyIds, ['boom']);
    assert.match(v.error ?? '', /overflow/);
  });

  it('refuses bad files with line and column, never throwing', () => {
    const cases: [string, RegExp, number][] = [
      ['permit (principal, action, resource)', /@id|unexpected|expected/, 1],
      ['@id("a")\npermit (principal, action, resource)\nwhen { resource.nope == 1 };', /nope|attribute|not/, 3],
      ['@id("a") permit (principal, action, resource);\n@id("a") permit (principal, action, resource);', /twice/, 2],
      ['@id("a") permit (principal, action == Action::"fly", resource);', /fly|action/, 1],
      ['', /./, 1],
      ['\u0000\u0001 garbage {{{', /./, 1],
    ];
    for (const [text, message, line] of cases) {
      const c = compilePolicies(text);
      if (text === '') {
        // An empty set is valid Cedar: it permits nothing, so everything fails closed.
        assert.ok(c.ok);
        continue;
      }
      assert.equal(c.ok, false, text);
      if (c.ok) continue;
      assert.match(c.problems[0]!.message, message);
      assert.equal(c.problems[0]!.line, line, `${text}: ${JSON.stringify(c.problems)}`);
      assert.ok(c.problems[0]!.column >= 1);
    }
    const big = compilePolicies('x'.repeat(300 * 1024));
    assert.equal(big.ok, false);
  });
});
