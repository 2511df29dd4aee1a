import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  MasterKeyError,
  SecretOpenError,
  createSecretBox,
  decodeKeyText,
  keyIdOf,
  loadMasterKey,
} from './secret-box.js';

const AT = { orgId: 'org_a', projectId: 'prj_a', name: 'wandb' };

describe('secret box', () => {
  const key = randomBytes(32);
  const box = createSecretBox(key);

  it('seals and opens, with a fresh nonce each time and no plaintext in the sealed form', () => {
    const value = 'hunter2-is-not-a-good-password';
    const a = box.seal(value, AT);
    const b = box.seal(value, AT);
    assert.notEqual(a.nonce, b.nonce);
    assert.notEqual(a.ciphertext, b.ciphertext);
    assert.equal(Buffer.from(a.nonce, 'base64').length, 12);
    assert.equal(a.keyId, keyIdOf(key));
    assert.ok(!JSON.stringify(a).includes(value));
    assert.ok(!Buffer.from(a.ciphertext, 'base64').includes(Buffer.from(value)));
    assert.equal(box.open(a, AT), value);
    assert.equal(box.open(b, AT), value);
    assert.equal(box.open(box.seal('ünïcødé ✓', AT), AT), 'ünïcødé ✓');
  });

  it('refuses a value moved to another org, project or name (the AAD binds it)', () => {
    const sealed = box.seal('v', AT);
    for (const elsewhere of [
      { ...AT, orgId: 'org_b' },
      { ...AT, projectId: 'prj_b' },
      { ...AT, projectId: '' },
      { ...AT, name: 'other' },
    ]) {
      assert.throws(() => box.open(sealed, elsewhere), SecretOpenError);
    }
  });

  it('refuses tampered ciphertext, tag or nonce', () => {
    const sealed = box.seal('a value long enough to flip bits in', AT);
    const flip = (b64: string, i: number) => {
      const b = Buffer.from(b64, 'base64');
      b[i] ^= 1;
      return b.toString('base64');
    };
    const ctLen = Buffer.from(sealed.ciphertext, 'base64').length;
    assert.throws(() => box.open({ ...sealed, ciphertext: flip(sealed.ciphertext, 0) }, AT), SecretOpenError);
    assert.throws(() => box.open({ ...sealed, ciphertext: flip(sealed.ciphertext, ctLen - 1) }, AT), SecretOpenError);
    assert.throws(() => box.open({ ...sealed, nonce: flip(sealed.nonce, 3) }, AT), SecretOpenError);
    assert.throws(() => box.open({ ...sealed, ciphertext: '' }, AT), /malformed/);
  });

  it('opens only with the key that sealed it, or an older key it was given (rotation)', () => {
    const sealed = box.seal('v', AT);
    const other = createSecretBox(randomBytes(32));
    assert.throws(() => other.open(sealed, AT), /does not hold/);
    assert.throws(() => other.open({ ...sealed, keyId: other.keyId }, AT), SecretOpenError);
    const rotated = createSecretBox(randomBytes(32), [key]);
    assert.equal(rotated.open(sealed, AT), 'v');
    assert.notEqual(rotated.seal('v', AT).keyId, sealed.keyId);
    assert.throws(() => createSecretBox(randomBytes(16)), MasterKeyError);
  });
});

describe('master key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-mk-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decodes 32 bytes from hex or base64, nothing else', () => {
    const k = randomBytes(32);
    assert.deepEqual(decodeKeyText(k.toString('hex')), k);
    assert.deepEqual(decodeKeyText(` ${k.toString('base64')}\n`), k);
    assert.deepEqual(decodeKeyText(k.toString('base64url')), k);
    assert.equal(decodeKeyText(randomBytes(16).toString('hex')), undefined);
    assert.equal(decodeKeyText(randomBytes(31).toString('base64')), undefined);
    assert.equal(decodeKeyText('not a key'), undefined);
  });

  it('prefers FABRIK_MASTER_KEY and refuses a malformed one', () => {
    const k = randomBytes(32);
    const got = loadMasterKey({ envValue: k.toString('base64'), file: join(dir, 'unused.key') });
    assert.deepEqual(got.key, k);
    assert.equal(got.source, 'env');
    assert.throws(() => statSync(join(dir, 'unused.key')), /ENOENT/);
    assert.throws(
      () => loadMasterKey({ envValue: 'abc', file: join(dir, 'unused.key') }),
      (e: Error) => e instanceof MasterKeyError && /FABRIK_MASTER_KEY must be 32 bytes/.test(e.message),
    );
  });

  it('creates the file with 32 random bytes and mode 0600, then reads the same key', () => {
    const file = join(dir, 'master.key');
    const first = loadMasterKey({ file });
    assert.equal(first.created, true);
    assert.equal(first.key.length, 32);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readFileSync(file), first.key);
    const again = loadMasterKey({ file });
    assert.equal(again.created, false);
    assert.deepEqual(again.key, first.key);
  });

  it('refuses a file that group or others may read or write', () => {
    for (const mode of [0o640, 0o604, 0o620, 0o644]) {
      const file = join(dir, `open-${mode.toString(8)}.key`);
      writeFileSync(file, randomBytes(32));
      chmodSync(file, mode);
      assert.throws(
        () => loadMasterKey({ file }),
        (e: Error) => e instanceof MasterKeyError && e.message.includes('chmod 600') && e.message.includes(file),
      );
    }
  });

  it('accepts a hex or base64 text file, refuses malformed content and non-files', () => {
    const k = randomBytes(32);
    const hex = join(dir, 'hex.key');
    writeFileSync(hex, `${k.toString('hex')}\n`, { mode: 0o600 });
    assert.deepEqual(loadMasterKey({ file: hex }).key, k);
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'too short', { mode: 0o600 });
    assert.throws(() => loadMasterKey({ file: bad }), /malformed/);
    const empty = join(dir, 'empty.key');
    writeFileSync(empty, '', { mode: 0o600 });
    assert.throws(() => loadMasterKey({ file: empty }), /malformed/);
    assert.throws(() => loadMasterKey({ file: dir }), /not a regular file/);
    const link = join(dir, 'link.key');
    symlinkSync(hex, link);
    assert.deepEqual(loadMasterKey({ file: link }).key, k, 'a link to a private key file is fine');
    assert.throws(() => loadMasterKey({ file: join(dir, 'no-such-dir', 'master.key') }), /cannot create/);
  });
});
