// The log's signing key: Ed25519, derived from the master key (HKDF), so every replica signs with
// the same key and nothing more is stored. Key texts in the C2SP signed-note formats
// (src/audit/note.ts): the verifier key is what auditors pin.
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { SIG_ED25519, keyIdOf } from '../note.js';

/** PKCS #8 DER prefix of an Ed25519 private key: the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface LogKeys {
  /** The checkpoints' origin line and the key's name, e.g. `fabrik.example.eu/audit`. */
  readonly origin: string;
  readonly signerKey: string;
  readonly verifierKey: string;
}

export function logKeys(masterKey: Buffer, origin: string): LogKeys {
  const seed = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'fabrik audit log ed25519 v1', 32));
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(-32);
  const keyId = keyIdOf(origin, SIG_ED25519, pub);
  const b64 = (k: Buffer) => Buffer.concat([Buffer.from([0x01]), k]).toString('base64');
  return {
    origin,
    signerKey: `PRIVATE+KEY+${origin}+${keyId}+${b64(seed)}`,
    verifierKey: `${origin}+${keyId}+${b64(pub)}`,
  };
}
