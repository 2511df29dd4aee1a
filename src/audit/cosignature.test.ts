// Cosignatures (c2sp.org/tlog-cosignature, Ed25519 cosignature/v1): the signed message of the
// spec's example, the timestamps of published cosignature lines (the spec's example and
// transparency-dev/formats' test vector; their witnesses' keys are not published with them, so
// those lines are taken apart, not verified), a published 0x04 verifier key, and round trips
// with keys generated here for everything that needs a signature checked.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatCheckpoint, openCheckpoint, signCheckpoint } from './checkpoint.js';
import {
  cosign,
  cosignedMessage,
  generateWitnessKey,
  parseCosignature,
  parseWitnessSignerKey,
  parseWitnessVerifierKey,
  verifyCosignature,
} from './cosignature.js';
import { NoteError, type NoteErrorReason, generateSigner, keyIdOf, parseVerifierKey } from './note.js';

const SPEC_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SPEC_COSIGNATURE =
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';
// transparency-dev/formats note/note_cosigv1_test.go: a witness key of type 0x04 and a cosignature's timestamp.
const REMORA_VKEY = 'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2';
const FORMATS_SIG =
  'ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==';

const T = 1_700_000_000;
const body = formatCheckpoint({
  origin: 'fabrik.example.eu/audit',
  size: 7,
  rootHash: createHash('sha256').update('r').digest(),
});

function refuses(fn: () => unknown, reason?: NoteErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NoteError, `expected a NoteError, got ${String(err)}`);
    if (reason) assert.equal(err.reason, reason, err.message);
    return true;
  });
}

describe('cosignatures: formats', () => {
  it('signs the message the spec shows', () => {
    assert.equal(
      cosignedMessage(SPEC_BODY, 1679315147).toString('utf8'),
      'cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
  });

  it('reads the timestamps of published cosignature lines', () => {
    const spec = parseCosignature(SPEC_COSIGNATURE);
    assert.equal(spec.name, 'witness.example.com/w1');
    assert.equal(spec.time, 1679315147); // the time of the spec's example message
    assert.equal(spec.signature.length, 64);
    assert.equal(parseCosignature(`— x ${FORMATS_SIG}\n`).time, 1727964367);
  });

  it('reads a published witness verifier key (type 0x04), which is no log key', () => {
    const k = parseWitnessVerifierKey(REMORA_VKEY);
    assert.equal(k.name, 'remora.n621.de');
    assert.equal(k.keyId, 'da77ade7');
    refuses(() => parseVerifierKey(REMORA_VKEY), 'bad-key');
  });

  it('names keys by SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]', () => {
    const w = generateWitnessKey('witness.example.org/w1');
    const vk = parseWitnessVerifierKey(w.verifierKey);
    assert.equal(vk.keyId, keyIdOf('witness.example.org/w1', 0x04, vk.publicKey));
    assert.notEqual(vk.keyId, keyIdOf('witness.example.org/w1', 0x01, vk.publicKey));
    assert.equal(Buffer.from(w.verifierKey.split('+')[2], 'base64')[0], 0x04);
    assert.equal(parseWitnessSignerKey(w.signerKey).keyId, vk.keyId);
  });
});

describe('cosignatures: signing and verifying', () => {
  const w = generateWitnessKey('witness.example.org/w1');

  it('round-trips, with or without the line’s newline', () => {
    const line = cosign(body, w.signerKey, T);
    assert.match(line, /^— witness\.example\.org\/w1 [A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(line.split(' ')[2], 'base64').length, 4 + 8 + 64);
    assert.deepEqual(verifyCosignature(body, line, w.verifierKey), { time: T });
    assert.deepEqual(verifyCosignature(body, `${line}\n`, w.verifierKey), { time: T });
  });

  it('appended to the log’s note, leaves the checkpoint opening with the log key', () => {
    const log = generateSigner('fabrik.example.eu/audit');
    const note = signCheckpoint(
      { origin: 'fabrik.example.eu/audit', size: 7, rootHash: Buffer.alloc(32, 1) },
      log.signerKey,
    );
    const cp = openCheckpoint(note, log.verifierKey);
    const cosigned = `${note}${cosign(cp.body, w.signerKey, T)}\n`;
    const again = openCheckpoint(cosigned, log.verifierKey);
    assert.deepEqual(
      again.note.unknown.map((u) => u.name),
      ['witness.example.org/w1'],
    );
    const line = cosigned.trimEnd().split('\n').at(-1)!;
    assert.equal(verifyCosignature(again.body, line, w.verifierKey).time, T);
  });

  it('refuses another witness’s line, other bodies, other times and tampering', () => {
    const line = cosign(body, w.signerKey, T);
    refuses(
      () => verifyCosignature(body, line, generateWitnessKey('witness.example.org/w1').verifierKey),
      'unverified',
    );
    refuses(() => verifyCosignature(body, line, generateWitnessKey('other.example/w').verifierKey), 'unverified');
    refuses(() => verifyCosignature(body.replace('\n7\n', '\n8\n'), line, w.verifierKey), 'bad-signature');
    refuses(() => verifyCosignature(`${body}extension\n`, line, w.verifierKey), 'bad-signature');
    const bytes = Buffer.from(line.split(' ')[2], 'base64');
    bytes.writeBigUInt64BE(BigInt(T + 1), 4);
    refuses(
      () => verifyCosignature(body, `— witness.example.org/w1 ${bytes.toString('base64')}`, w.verifierKey),
      'bad-signature',
    );
    const short = Buffer.from(line.split(' ')[2], 'base64').subarray(0, 70);
    refuses(
      () => verifyCosignature(body, `— witness.example.org/w1 ${short.toString('base64')}`, w.verifierKey),
      'malformed',
    );
    refuses(() => verifyCosignature(body, 'not a line', w.verifierKey), 'malformed');
    refuses(() => verifyCosignature(body, '— witness.example.org/w1 !!', w.verifierKey), 'bad-base64');
  });

  it('refuses log keys as witness keys, times that are not POSIX seconds and bodies that are no checkpoint', () => {
    const log = generateSigner('fabrik.example.eu/audit');
    refuses(() => cosign(body, log.signerKey, T), 'bad-key');
    refuses(() => verifyCosignature(body, cosign(body, w.signerKey, T), log.verifierKey), 'bad-key');
    for (const t of [-1, 1.5, Number.NaN, 2 ** 60]) refuses(() => cosign(body, w.signerKey, t), 'malformed');
    refuses(() => cosign('not a checkpoint\n', w.signerKey, T), 'malformed-checkpoint');
  });

  it('answers every truncation of a cosignature line with a NoteError', () => {
    const line = cosign(body, w.signerKey, T);
    for (let n = 0; n < line.length; n++) refuses(() => verifyCosignature(body, line.slice(0, n), w.verifierKey));
  });
});
