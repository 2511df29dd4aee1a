// Signed notes against the reference vectors: the PeterNeumann and EnochRoot keys and notes of
// golang.org/x/mod/sumdb/note (note_test.go), reproduced byte for byte since Ed25519 is
// deterministic, and the example of the C2SP signed-note spec. Then every refusal, and
// mangled input that must fail with a NoteError, never anything else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_NOTE_BYTES,
  NoteError,
  type NoteErrorReason,
  SIG_COSIGNATURE_V1,
  generateSigner,
  keyIdOf,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from './note.js';

// golang.org/x/mod/sumdb/note, note_test.go (TestSign, TestOpen).
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_B64 = 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
const PETER_SIG = `— PeterNeumann ${PETER_B64}\n`;
const ENOCH_B64 = 'rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=';
const ENOCH_SIG = `— EnochRoot ${ENOCH_B64}\n`;

// c2sp.org/signed-note, the example under "Verifier keys" (as quoted by several implementations;
// it verifies below, which a mistyped key or signature could not).
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

function refuses(fn: () => unknown, reason?: NoteErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NoteError, `expected a NoteError, got ${String(err)}`);
    if (reason) assert.equal(err.reason, reason, err.message);
    return true;
  });
}

describe('signed notes: reference vectors', () => {
  it('derives key id c74f20a3 from the PeterNeumann key and signs exactly as Go does', () => {
    const signer = parseSignerKey(PETER_SKEY);
    assert.equal(signer.name, 'PeterNeumann');
    assert.equal(signer.keyId, 'c74f20a3');
    assert.equal(keyIdOf('PeterNeumann', 0x01, signer.publicKey), 'c74f20a3');
    const verifier = parseVerifierKey(PETER_VKEY);
    assert.deepEqual(verifier.publicKey, signer.publicKey);
    assert.equal(signNote(TEXT, PETER_SKEY), `${TEXT}\n${PETER_SIG}`);
  });

  it('opens the Go note with one known and one unknown key, both, or neither', () => {
    const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = openNote(note, [PETER_VKEY]);
    assert.equal(one.text, TEXT);
    assert.deepEqual(one.verified, [{ name: 'PeterNeumann', keyId: 'c74f20a3', base64: PETER_B64 }]);
    assert.deepEqual(one.unknown, [{ name: 'EnochRoot', keyId: 'af0cfe78', base64: ENOCH_B64 }]);
    const both = openNote(note, [PETER_VKEY, ENOCH_VKEY]);
    assert.deepEqual(
      both.verified.map((s) => s.name),
      ['PeterNeumann', 'EnochRoot'],
    );
    assert.deepEqual(both.unknown, []);
    refuses(() => openNote(note, []), 'unverified');
  });

  it('counts repeated signatures once and lists unknown ones once (Go TestOpen)', () => {
    const mangledEnoch = `${ENOCH_SIG.slice(0, 60)}ABCD${ENOCH_SIG.slice(60)}`;
    const n = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${mangledEnoch}`, [PETER_VKEY]);
    assert.equal(n.verified.length, 1);
    assert.equal(n.unknown.length, 2);
  });

  it('refuses a known key whose signature does not verify', () => {
    const bad = `${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    refuses(() => openNote(`${TEXT}\n${bad}`, [PETER_VKEY]), 'bad-signature');
    // A flipped bit in the signature proper, same length.
    const sig = Buffer.from(PETER_B64, 'base64');
    sig[10] ^= 1;
    refuses(() => openNote(`${TEXT}\n— PeterNeumann ${sig.toString('base64')}\n`, [PETER_VKEY]), 'bad-signature');
    // The right signature over other text.
    refuses(() => openNote(`${TEXT.replace('problem', 'Problem')}\n${PETER_SIG}`, [PETER_VKEY]), 'bad-signature');
  });

  it('opens the example of the signed-note spec', () => {
    const n = openNote(SPEC_NOTE, [SPEC_VKEY]);
    assert.equal(n.text, 'This is an example message.\n');
    assert.equal(parseVerifierKey(SPEC_VKEY).keyId, '530d903a');
  });

  it('refuses the malformed messages of Go TestOpen', () => {
    const cases: [string | Uint8Array, NoteErrorReason][] = [
      [TEXT, 'no-blank-line'],
      [`${TEXT}\n`, 'malformed'],
      [`${TEXT}\n${PETER_SIG.slice(0, -1)}`, 'malformed'],
      [`\x01${TEXT}\n${PETER_SIG}`, 'malformed'],
      [Buffer.concat([Buffer.from([0xff]), Buffer.from(`${TEXT}\n${PETER_SIG}`)]), 'malformed'],
      [`${TEXT}\n— Bad Name ${PETER_B64}`, 'malformed'],
      [`${TEXT}\n— Bad Name ${PETER_B64}\n`, 'bad-base64'], // the name ends at the first space
      [`${TEXT}\n— Bad+Name ${PETER_B64}\n`, 'bad-name'],
      [`${TEXT}\n${PETER_SIG}Unexpected line.\n`, 'malformed'],
    ];
    for (const [msg, reason] of cases) refuses(() => openNote(msg, [PETER_VKEY]), reason);
  });
});

describe('signed notes: keys', () => {
  it('generates keys that sign and verify, and a second signer on the same note', () => {
    const a = generateSigner('fabrik.example.eu/audit');
    const b = generateSigner('witness.example.org/w1');
    const note = signNote('hello\n', [a.signerKey, b.signerKey]);
    assert.equal(openNote(note, [a.verifierKey, b.verifierKey]).verified.length, 2);
    assert.deepEqual(
      openNote(note, [b.verifierKey]).unknown.map((u) => u.name),
      ['fabrik.example.eu/audit'],
    );
    assert.match(a.signerKey, /^PRIVATE\+KEY\+fabrik\.example\.eu\/audit\+[0-9a-f]{8}\+/);
    assert.equal(Buffer.from(a.signerKey.split('+')[4], 'base64')[0], 0x01);
    assert.equal(parseSignerKey(a.signerKey).keyId, parseVerifierKey(a.verifierKey).keyId);
  });

  it('refuses names with spaces, plus signs or newlines, and empty names', () => {
    for (const name of ['a b', 'a+b', 'a\nb', 'a\u00a0b', 'a\u2028b', ''])
      refuses(() => generateSigner(name), 'bad-name');
  });

  it('refuses every truncation and every one-character change of a key (Go TestNewVerifier/Signer)', () => {
    for (const [key, parse] of [
      [PETER_VKEY, (k: string) => parseVerifierKey(k)],
      [PETER_SKEY, (k: string) => parseSignerKey(k)],
    ] as const) {
      for (let i = 0; i <= key.length; i++)
        for (let j = i + 1; j <= key.length; j++)
          if (i !== 0 || j !== key.length) refuses(() => parse(key.slice(i, j)), 'bad-key');
      for (let i = 0; i < key.length; i++) {
        const changed = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
        refuses(() => parse(changed), 'bad-key');
      }
    }
  });

  it('refuses a key of the wrong length or algorithm even with a matching key id', () => {
    // From Go TestNewVerifier: key ids adjusted to the mangled keys.
    refuses(
      () => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
      'bad-key',
    );
    refuses(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), 'bad-key');
    // A witness (type 0x04) key is not a note key, and the other way round.
    const w = generateSigner('w.example', SIG_COSIGNATURE_V1);
    refuses(() => parseVerifierKey(w.verifierKey), 'bad-key');
    refuses(() => parseSignerKey(w.signerKey), 'bad-key');
    refuses(() => parseVerifierKey(PETER_VKEY, SIG_COSIGNATURE_V1), 'bad-key');
  });

  it('ignores a signature from a key that shares the name but not the id, and refuses ambiguous keys', () => {
    const other = generateSigner('PeterNeumann');
    const n = openNote(`${TEXT}\n${PETER_SIG}`, [other.verifierKey, PETER_VKEY]);
    assert.equal(n.verified.length, 1);
    refuses(() => openNote(`${TEXT}\n${PETER_SIG}`, [other.verifierKey]), 'unverified');
    // Two different public keys under one name and id: which one signed cannot be told.
    const impostor = { ...parseVerifierKey(other.verifierKey), keyId: 'c74f20a3' };
    refuses(() => openNote(`${TEXT}\n${PETER_SIG}`, [PETER_VKEY, impostor]), 'bad-key');
  });
});

describe('signed notes: refusals and hostile input', () => {
  const key = generateSigner('log.example/a');
  const good = signNote('origin\n1\nroot\n', key.signerKey);

  it('refuses text that cannot be signed', () => {
    refuses(() => signNote('no newline', key.signerKey), 'malformed');
    refuses(() => signNote('tab\there\n', key.signerKey), 'malformed');
    refuses(() => signNote('\ud800 lone surrogate\n', key.signerKey), 'malformed');
    refuses(() => signNote(`${'x'.repeat(MAX_NOTE_BYTES)}\n`, key.signerKey), 'too-large');
  });

  it('keeps blank lines inside the text: the last blank line ends it', () => {
    const note = signNote('a\n\nb\n', key.signerKey);
    assert.equal(openNote(note, [key.verifierKey]).text, 'a\n\nb\n');
  });

  it('refuses bad base64, oversized notes and too many signature lines', () => {
    refuses(() => openNote('a\n\n— log.example/a !!!!\n', [key.verifierKey]), 'bad-base64');
    refuses(() => openNote('a\n\n— log.example/a AAAA\n', [key.verifierKey]), 'malformed'); // 3 bytes: no key id
    refuses(() => openNote('a\n\n— log.example/a\n', [key.verifierKey]), 'bad-base64');
    refuses(() => openNote(`${'x'.repeat(MAX_NOTE_BYTES)}\n\n${PETER_SIG}`, [PETER_VKEY]), 'too-large');
    refuses(() => openNote(Buffer.alloc(MAX_NOTE_BYTES + 1, 0x61), [PETER_VKEY]), 'too-large');
    refuses(() => openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, [PETER_VKEY]), 'too-large');
    assert.equal(openNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [PETER_VKEY]).verified.length, 1);
  });

  it('answers every truncation and every flipped byte of a note with a NoteError or a result', () => {
    const bytes = Buffer.from(good, 'utf8');
    for (let n = 0; n < bytes.length; n++) refuses(() => openNote(bytes.subarray(0, n), [key.verifierKey]));
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const b = Buffer.from(bytes);
        b[i] ^= bit;
        try {
          openNote(b, [key.verifierKey]);
        } catch (err) {
          assert.ok(err instanceof NoteError, `byte ${i}: ${String(err)}`);
        }
      }
    }
  });
});
