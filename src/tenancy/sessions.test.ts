import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csrfMatches, csrfTokenOf, hashToken, isSessionToken } from './sessions.js';

describe('session tokens', () => {
  const a = `fbs_${'A'.repeat(43)}`;
  const b = `fbs_${'B'.repeat(43)}`;

  it('recognises only the session token form', () => {
    assert.equal(isSessionToken(a), true);
    assert.equal(isSessionToken(`fbs_${'A'.repeat(42)}`), false);
    assert.equal(isSessionToken(`fbk_abcdefabcdef_${'A'.repeat(43)}`), false);
    assert.equal(isSessionToken(`${a};x`), false);
  });

  it('stores the SHA-256 of a token, never the token', () => {
    assert.match(hashToken(a), /^[0-9a-f]{64}$/);
    assert.notEqual(hashToken(a), hashToken(b));
  });

  it('derives a CSRF token bound to the session', () => {
    assert.equal(csrfTokenOf(a), csrfTokenOf(a));
    assert.notEqual(csrfTokenOf(a), csrfTokenOf(b));
    assert.ok(!csrfTokenOf(a).includes(a.slice(4)));
    assert.equal(csrfMatches(csrfTokenOf(a), csrfTokenOf(a)), true);
    assert.equal(csrfMatches(csrfTokenOf(b), csrfTokenOf(a)), false);
    assert.equal(csrfMatches(undefined, csrfTokenOf(a)), false);
    assert.equal(csrfMatches('', csrfTokenOf(a)), false);
    assert.equal(csrfMatches(csrfTokenOf(a).slice(1), csrfTokenOf(a)), false);
  });
});
