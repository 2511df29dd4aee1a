import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../domain/errors.js';
import { managedOrgs, managesOperator, mapRoles, parseRoleMapping, userNameFrom } from './oidc-roles.js';

const MAPPING = `
- claim: groups
  value: acme-admins
  org: acme
  role: admin
- { claim: groups, value: acme-staff, org: acme, role: viewer }
- { claim: groups, value: globex-ml, org: globex, project: train, role: member }
- { claim: realm_access.roles, value: fabrik-ops, role: operator }
- { claim: email_verified, value: true, org: public, role: viewer }
`;

function problem(text: string): AppError {
  try {
    parseRoleMapping(text, 'roles.yaml');
  } catch (e) {
    assert.ok(e instanceof AppError);
    return e;
  }
  assert.fail('expected OIDC_ROLES_INVALID');
}

describe('OIDC role mapping', () => {
  const rules = parseRoleMapping(MAPPING);

  it('parses rules of both kinds', () => {
    assert.equal(rules.length, 5);
    assert.deepEqual(rules[2], {
      claim: 'groups',
      value: 'globex-ml',
      role: 'member',
      org: 'globex',
      project: 'train',
    });
    assert.deepEqual(rules[3], { claim: 'realm_access.roles', value: 'fabrik-ops', role: 'operator' });
    assert.deepEqual([...managedOrgs(rules)].sort(), ['acme', 'globex', 'public']);
    assert.equal(managesOperator(rules), true);
    assert.equal(managesOperator(rules.slice(0, 2)), false);
  });

  it('maps groups to the highest role per org and project', () => {
    const m = mapRoles(rules, { sub: 'x', groups: ['acme-staff', 'acme-admins', 'globex-ml'] });
    assert.equal(m.operator, false);
    assert.deepEqual(m.grants, [
      { org: 'acme', project: '', role: 'admin' },
      { org: 'globex', project: 'train', role: 'member' },
    ]);
  });

  it('reads nested claims, single values and non-string values', () => {
    assert.equal(mapRoles(rules, { realm_access: { roles: ['fabrik-ops'] } }).operator, true);
    assert.equal(mapRoles(rules, { realm_access: 'fabrik-ops' }).operator, false);
    assert.deepEqual(mapRoles(rules, { groups: 'acme-staff' }).grants, [{ org: 'acme', project: '', role: 'viewer' }]);
    assert.deepEqual(mapRoles(rules, { email_verified: true }).grants, [
      { org: 'public', project: '', role: 'viewer' },
    ]);
    assert.deepEqual(mapRoles(rules, { email_verified: 'false' }).grants, []);
  });

  it('gives nothing to claims no rule names', () => {
    const m = mapRoles(rules, { sub: 'x', groups: ['acme-admins-not', { nested: 'acme-admins' }] });
    assert.deepEqual(m, { operator: false, grants: [] });
    assert.deepEqual(mapRoles(rules, null), { operator: false, grants: [] });
  });

  it('an empty file maps nothing', () => {
    assert.deepEqual(parseRoleMapping(''), []);
  });

  it('refuses bad files with line and column', () => {
    let e = problem('- { claim: groups, value: a, org: acme, role: boss }');
    assert.equal(e.code, 'OIDC_ROLES_INVALID');
    assert.match(e.message, /^roles\.yaml:1:\d+: \[0\]\.role: must be one of viewer, member, admin, owner, operator/);
    e = problem('- claim: groups\n  value: a\n  role: admin\n');
    assert.match(e.message, /roles\.yaml:1:3: \[0\]: a "admin" rule needs an org/);
    e = problem('- { claim: groups, value: ops, role: operator, org: acme }');
    assert.match(e.message, /an operator rule names no org/);
    e = problem('- { claim: groups, value: a, org: Acme Corp, role: viewer }');
    assert.match(e.message, /\[0\]\.org: org "Acme Corp" is not a DNS label/);
    e = problem('- { claim: groups, value: a, org: acme, role: viewer, extra: 1 }');
    assert.match(e.message, /extra/);
    e = problem('claim: groups');
    assert.match(e.message, /must be a list/);
    e = problem('- [unclosed');
    assert.match(e.message, /YAML syntax error/);
  });

  it('derives DNS-label user names from claims', () => {
    assert.equal(userNameFrom({ sub: 's1', preferred_username: 'Alice.Smith' }), 'alice-smith');
    assert.equal(userNameFrom({ sub: 's1', email: 'Bob_Jones@example.eu' }), 'bob-jones');
    assert.equal(userNameFrom({ sub: '248289761001' }), '248289761001');
    assert.equal(userNameFrom({ sub: '---', preferred_username: '!!!' }), 'oidc-user');
    assert.ok(userNameFrom({ sub: 'x', preferred_username: 'a'.repeat(100) }).length <= 54);
  });
});
