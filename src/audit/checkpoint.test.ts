// Checkpoints: the body format of c2sp.org/tlog-checkpoint (its example body parses), strict
// parsing, and opening signed checkpoints with the log's key only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.js';
import { NoteError, type NoteErrorReason, generateSigner, signNote } from './note.js';

// The example of the tlog-checkpoint spec (body only: the example log's key is not published).
const SPEC_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

const root = createHash('sha256').update('some tree').digest();
const log = generateSigner('fabrik.example.eu/audit');

function refuses(fn: () => unknown, reason?: NoteErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NoteError, `expected a NoteError, got ${String(err)}`);
    if (reason) assert.equal(err.reason, reason, err.message);
    return true;
  });
}

describe('checkpoint bodies', () => {
  it('parses the example of the spec', () => {
    const cp = parseCheckpoint(SPEC_BODY);
    assert.equal(cp.origin, 'example.com/behind-the-sofa');
    assert.equal(cp.size, 20852163);
    assert.equal(cp.rootHash.length, 32);
    assert.deepEqual(cp.extensions, []);
    assert.equal(formatCheckpoint(cp), SPEC_BODY);
  });

  it('formats and parses back, extension lines included', () => {
    const body = formatCheckpoint({ origin: 'o', size: 0, rootHash: root, extensions: ['ext one', 'two'] });
    assert.equal(body, `o\n0\n${root.toString('base64')}\next one\ntwo\n`);
    assert.deepEqual(parseCheckpoint(body), { origin: 'o', size: 0, rootHash: root, extensions: ['ext one', 'two'] });
  });

  it('refuses sizes that are not plain decimals', () => {
    for (const size of ['01', '00', '-1', '+1', ' 1', '1 ', '1.0', '0x10', '1e3', '', '9007199254740992', '١٢'])
      refuses(() => parseCheckpoint(`o\n${size}\n${root.toString('base64')}\n`), 'malformed-checkpoint');
    assert.equal(parseCheckpoint(`o\n9007199254740991\n${root.toString('base64')}\n`).size, Number.MAX_SAFE_INTEGER);
  });

  it('refuses a root hash that is not exactly 32 bytes of canonical base64', () => {
    const b64 = root.toString('base64');
    for (const r of [
      root.subarray(1).toString('base64'),
      Buffer.concat([root, Buffer.from([0])]).toString('base64'),
      b64.slice(0, -1),
      `${b64.slice(0, -1)}!`,
      root.toString('hex'),
      '',
    ])
      refuses(() => parseCheckpoint(`o\n1\n${r}\n`), 'malformed-checkpoint');
    // The last character before '=' carries two padding bits: set one and the bytes stay the same,
    // but the text differs, and one tree head must have one text.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const nonCanonical = `${b64.slice(0, 42)}${alphabet[alphabet.indexOf(b64[42]) ^ 1]}=`;
    assert.deepEqual(Buffer.from(nonCanonical, 'base64'), root);
    refuses(() => parseCheckpoint(`o\n1\n${nonCanonical}\n`), 'malformed-checkpoint');
  });

  it('refuses missing lines, an empty origin, empty extension lines and a missing final newline', () => {
    const r = root.toString('base64');
    for (const text of [`o\n1\n${r}`, `o\n1\n`, `\n1\n${r}\n`, `o\n1\n${r}\n\n`, `o\n1\n${r}\nx\n\n`, '', '\n'])
      refuses(() => parseCheckpoint(text), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: '', size: 1, rootHash: root }), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash: root }), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: 'o', size: -1, rootHash: root }), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: 'o', size: 1.5, rootHash: root }), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root.subarray(2) }), 'malformed-checkpoint');
    refuses(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root, extensions: [''] }), 'malformed-checkpoint');
  });
});

describe('signed checkpoints', () => {
  const cp = { origin: 'fabrik.example.eu/audit', size: 42, rootHash: root };

  it('signs and opens a checkpoint, leaving other signatures (cosignatures) to the caller', () => {
    const note = signCheckpoint(cp, log.signerKey);
    const cosigned = `${note}— witness.example.org/w1 ${Buffer.alloc(80, 7).toString('base64')}\n`;
    const opened = openCheckpoint(cosigned, log.verifierKey, { origin: 'fabrik.example.eu/audit' });
    assert.equal(opened.size, 42);
    assert.deepEqual(opened.rootHash, root);
    assert.equal(opened.body, formatCheckpoint(cp));
    assert.deepEqual(
      opened.note.unknown.map((u) => u.name),
      ['witness.example.org/w1'],
    );
  });

  it('refuses another log’s origin, another key, a bad signature and a body that is no checkpoint', () => {
    const note = signCheckpoint(cp, log.signerKey);
    refuses(() => openCheckpoint(note, log.verifierKey, { origin: 'other.example/log' }), 'wrong-origin');
    refuses(() => openCheckpoint(note, generateSigner('fabrik.example.eu/audit').verifierKey), 'unverified');
    refuses(() => openCheckpoint(note.replace('\n42\n', '\n43\n'), log.verifierKey), 'bad-signature');
    refuses(() => openCheckpoint(signNote('just text\n', log.signerKey), log.verifierKey), 'malformed-checkpoint');
    refuses(() => openCheckpoint('not a note', log.verifierKey), 'no-blank-line');
  });

  it('answers every truncation of a signed checkpoint with a NoteError', () => {
    const note = signCheckpoint(cp, log.signerKey);
    for (let n = 0; n < note.length; n++) refuses(() => openCheckpoint(note.slice(0, n), log.verifierKey));
  });
});
