import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  countersign,
  type DsseEnvelope,
  decodeStatement,
  keyIdOf,
  loadOrCreateSigningKey,
  type ManifestFile,
  PREDICATE_TYPE,
  pae,
  rootDigest,
  type SignedVersion,
  SigningKeyError,
  signVersion,
  statementFor,
  verifyEnvelope,
} from './signing.js';

const dir = mkdtempSync(join(tmpdir(), 'fabrik-signing-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const file = (path: string, content: string): ManifestFile => ({
  path,
  size: content.length,
  sha256: sha(content),
  blobId: `blob-${path}`,
});

const files = [
  file('model.safetensors', 'weights'),
  file('README.md', '# card'),
  file('config.json', '{}'),
  file('tokenizer/vocab.json', '[]'),
];
const version: SignedVersion = {
  repo: 'acme.vision/detector',
  kind: 'model',
  commit: 'a'.repeat(40),
  parent: '',
  files,
  producer: { workloadId: 'wl_123', attempt: 2 },
};

const platform = loadOrCreateSigningKey(join(dir, 'platform.pem'));
const trusted = [{ keyid: platform.keyid, publicKey: platform.publicKeyPem }];
const expected = { files, commit: version.commit };

function tenantKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, keyid: keyIdOf(publicKey) };
}

/** The same envelope with its payload statement changed by `edit`. */
function withStatement(env: DsseEnvelope, edit: (s: any) => void): DsseEnvelope {
  const s = decodeStatement(env);
  edit(s);
  return { ...env, payload: Buffer.from(JSON.stringify(s)).toString('base64') };
}

describe('DSSE PAE', () => {
  it('matches the test vector of the DSSE protocol', () => {
    const got = pae('http://example.com/HelloWorld', Buffer.from('hello world'));
    assert.equal(got.toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  it('counts bytes, not characters', () => {
    assert.equal(pae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
    assert.equal(pae('', Buffer.alloc(0)).toString(), 'DSSEv1 0  0 ');
  });
});

describe('statement', () => {
  it('is a model-signing v1.0 statement over the files sorted by path, without blob ids', () => {
    const s = statementFor(version) as any;
    assert.equal(s._type, 'https://in-toto.io/Statement/v1');
    assert.equal(s.predicateType, PREDICATE_TYPE);
    const names = s.predicate.resources.map((r: any) => r.name);
    assert.deepEqual(names, ['README.md', 'config.json', 'model.safetensors', 'tokenizer/vocab.json']);
    assert.deepEqual(s.predicate.resources[0], { name: 'README.md', algorithm: 'sha256', digest: sha('# card') });
    assert.deepEqual(s.predicate.serialization, {
      method: 'files',
      hash_type: 'sha256',
      allow_symlinks: false,
      ignore_paths: [],
    });
    assert.equal(s.subject.length, 1);
    assert.equal(s.subject[0].name, 'acme.vision/detector');
    assert.equal(s.subject[0].digest.sha256, rootDigest(s.predicate.resources.map((r: any) => r.digest)));
    assert.deepEqual(s.predicate.fabrik.producer, { workloadId: 'wl_123', attempt: 2 });
    assert.equal(s.predicate.fabrik.commit, version.commit);
    assert.ok(!JSON.stringify(s).includes('blob-'));
  });

  it('root digest hashes the raw digest bytes in order', () => {
    const a = sha('a');
    const b = sha('b');
    const want = createHash('sha256')
      .update(Buffer.concat([Buffer.from(a, 'hex'), Buffer.from(b, 'hex')]))
      .digest('hex');
    assert.equal(rootDigest([a, b]), want);
  });
});

describe('sign and verify', () => {
  const env = signVersion(version, platform);

  it('round-trips', () => {
    assert.equal(env.payloadType, 'application/vnd.in-toto+json');
    assert.equal(env.signatures.length, 1);
    assert.equal(env.signatures[0].keyid, platform.keyid);
    assert.equal(Buffer.from(env.signatures[0].sig, 'base64').length, 64);
    assert.deepEqual(verifyEnvelope(env, trusted, expected), { ok: true, signers: [platform.keyid] });
    assert.deepEqual(verifyEnvelope(env, trusted), { ok: true, signers: [platform.keyid] });
  });

  it('is deterministic (canonical payload, Ed25519)', () => {
    assert.deepEqual(signVersion({ ...version, files: [...files].reverse() }, platform), env);
  });

  it('refuses a tampered payload', () => {
    const bad = withStatement(env, (s) => {
      s.predicate.fabrik.commit = 'b'.repeat(40);
    });
    const r = verifyEnvelope(bad, trusted);
    assert.equal(r.ok, false);
    assert.match((r as any).reason, /signature by key .* does not verify/);
  });

  it('refuses a tampered signature', () => {
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    sig[0] ^= 1;
    const bad = { ...env, signatures: [{ ...env.signatures[0], sig: sig.toString('base64') }] };
    assert.match((verifyEnvelope(bad, trusted) as any).reason, /does not verify/);
  });

  it('refuses an envelope signed by another key under the platform keyid', () => {
    const other = tenantKey();
    const forged = countersign({ ...env, signatures: [] }, other.privateKey, platform.keyid);
    assert.match((verifyEnvelope(forged, trusted) as any).reason, /does not verify/);
  });

  it('refuses an envelope the platform did not sign', () => {
    const other = tenantKey();
    const onlyOther = countersign({ ...env, signatures: [] }, other.privateKey, other.keyid);
    const r = verifyEnvelope(onlyOther, [...trusted, { keyid: other.keyid, publicKey: other.publicKey }]);
    assert.match((r as any).reason, /no signature by the platform key/);
    assert.match((verifyEnvelope(onlyOther, trusted) as any).reason, /no signature by the platform key/);
  });

  it('refuses a changed file digest, naming the path', () => {
    const changed = files.map((f) => (f.path === 'config.json' ? { ...f, sha256: sha('{"x":1}') } : f));
    const r = verifyEnvelope(env, trusted, { files: changed, commit: version.commit });
    assert.match((r as any).reason, /file config\.json has digest/);
  });

  it('refuses an added file, naming the path', () => {
    const r = verifyEnvelope(env, trusted, { files: [...files, file('extra.bin', 'x')], commit: version.commit });
    assert.match((r as any).reason, /file extra\.bin is not covered/);
  });

  it('refuses a missing file, naming the path', () => {
    const r = verifyEnvelope(env, trusted, {
      files: files.filter((f) => f.path !== 'tokenizer/vocab.json'),
      commit: version.commit,
    });
    assert.match((r as any).reason, /file tokenizer\/vocab\.json is signed but missing/);
  });

  it('refuses another commit', () => {
    const r = verifyEnvelope(env, trusted, { files, commit: 'c'.repeat(40) });
    assert.match((r as any).reason, /signs commit a+, not c+/);
  });

  it('refuses a statement whose subject does not match its resources, even if signed', () => {
    const s = decodeStatement(env);
    s.subject[0].digest.sha256 = sha('nope');
    const payload = Buffer.from(JSON.stringify(s)).toString('base64');
    const resigned = countersign(
      { payloadType: env.payloadType, payload, signatures: [] },
      platform.privateKey,
      platform.keyid,
    );
    assert.match((verifyEnvelope(resigned, trusted) as any).reason, /subject digest does not match/);
  });

  it('refuses malformed envelopes without throwing', () => {
    assert.equal(verifyEnvelope({} as any, trusted).ok, false);
    assert.equal(verifyEnvelope({ ...env, payloadType: 'text/plain' }, trusted).ok, false);
    assert.equal(verifyEnvelope({ ...env, signatures: [{ keyid: platform.keyid, sig: '!!' }] }, trusted).ok, false);
  });

  it('verifies a countersignature alongside the platform one', () => {
    const tenant = tenantKey();
    const both = countersign(env, tenant.privateKey, tenant.keyid);
    assert.equal(both.payload, env.payload);
    assert.equal(both.signatures.length, 2);
    const all = [...trusted, { keyid: tenant.keyid, publicKey: tenant.publicKey }];
    assert.deepEqual(verifyEnvelope(both, all, expected), { ok: true, signers: [platform.keyid, tenant.keyid] });
    // An unknown countersigner is ignored, not counted.
    assert.deepEqual(verifyEnvelope(both, trusted, expected), { ok: true, signers: [platform.keyid] });
    // A known countersigner whose signature is bad fails the whole envelope.
    const broken = {
      ...both,
      signatures: [both.signatures[0], { ...both.signatures[1], sig: both.signatures[0].sig }],
    };
    assert.match((verifyEnvelope(broken, all) as any).reason, new RegExp(`key ${tenant.keyid} does not verify`));
    assert.throws(() => countersign(both, tenant.privateKey, tenant.keyid), { code: 'CONFLICT' });
  });

  it('accepts PEM private keys for countersigning and refuses non-Ed25519 keys', () => {
    const tenant = tenantKey();
    const pem = tenant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const both = countersign(env, pem, tenant.keyid);
    assert.ok(verifyEnvelope(both, [...trusted, { keyid: tenant.keyid, publicKey: tenant.publicKey }]).ok);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.throws(() => countersign(env, ec.privateKey, 'ec'), { code: 'INVALID_ARGUMENT' });
  });
});

describe('signing key file', () => {
  it('is created once with mode 0600 and loads the same key again', () => {
    const f = join(dir, 'k1.pem');
    const a = loadOrCreateSigningKey(f);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.match(readFileSync(f, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const b = loadOrCreateSigningKey(f);
    assert.equal(a.keyid, b.keyid);
    assert.equal(a.publicKeyPem, b.publicKeyPem);
    assert.match(a.keyid, /^[0-9a-f]{64}$/);
    assert.equal(a.keyid, keyIdOf(a.publicKeyPem));
  });

  it('refuses a file readable by others', () => {
    const f = join(dir, 'k2.pem');
    loadOrCreateSigningKey(f);
    chmodSync(f, 0o644);
    assert.throws(
      () => loadOrCreateSigningKey(f),
      (e: Error) => e instanceof SigningKeyError && /chmod 600/.test(e.message),
    );
  });

  it('refuses garbage and non-Ed25519 keys', () => {
    const g = join(dir, 'k3.pem');
    writeFileSync(g, 'not a key', { mode: 0o600 });
    assert.throws(() => loadOrCreateSigningKey(g), SigningKeyError);
    const e = join(dir, 'k4.pem');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(e, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    assert.throws(() => loadOrCreateSigningKey(e), /not Ed25519/);
  });
});
