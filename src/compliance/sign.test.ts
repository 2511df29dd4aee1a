import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyIdOf } from '../registry/signing.js';
import { documentDigest, signDocument, verifyDocument } from './sign.js';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyid: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}

describe('compliance document signatures', () => {
  const key = keyPair();
  const doc = { kind: 'annex-xi', b: [1, 2.5, 'x'], a: { z: null, y: 'ü' } };

  it('signs the canonical JSON: key order does not matter, the digest is that of RFC 8785', () => {
    const s = signDocument(doc, key);
    assert.equal(s.signature.keyid, key.keyid);
    assert.equal(s.signature.digest, documentDigest({ a: { y: 'ü', z: null }, b: [1, 2.5, 'x'], kind: 'annex-xi' }));
    const reordered = {
      signature: s.signature,
      document: { a: { z: null, y: 'ü' }, b: [1, 2.5, 'x'], kind: 'annex-xi' },
    };
    assert.deepEqual(verifyDocument(reordered, key.publicKeyPem), {
      ok: true,
      keyid: key.keyid,
      digest: s.signature.digest,
    });
  });

  it('refuses a changed document, another key, a forged signature and shapes that are not signed documents', () => {
    const s = signDocument(doc, key);
    const changed = { ...s, document: { ...doc, kind: 'gdpr-art30' } };
    assert.match((verifyDocument(changed, key.publicKeyPem) as { reason: string }).reason, /digest/);
    const other = keyPair();
    assert.match((verifyDocument(s, other.publicKeyPem) as { reason: string }).reason, /not the trusted key/);
    const forged = signDocument(doc, { ...other, keyid: key.keyid });
    assert.match((verifyDocument(forged, key.publicKeyPem) as { reason: string }).reason, /does not verify/);
    assert.equal(verifyDocument({ document: doc }, key.publicKeyPem).ok, false);
    assert.equal(verifyDocument('x', key.publicKeyPem).ok, false);
    assert.equal(verifyDocument({ ...s, signature: { ...s.signature, algorithm: 'rsa' } }, key.publicKeyPem).ok, false);
    assert.match((verifyDocument(s, 'not a key') as { reason: string }).reason, /not an Ed25519 public key/);
  });
});
