// What the browser build gives the audit modules for `node:crypto` (see vite.config.ts): a
// synchronous SHA-256 for createHash (@noble/hashes: WebCrypto's digest is asynchronous). Key handling and signatures are not done through this
// shim in the browser (the console verifies Ed25519 with WebCrypto): those names throw.
import { Buffer } from 'buffer/index.js';
import { sha256 } from '@noble/hashes/sha2.js';

class Hash {
  private h = sha256.create();
  update(data: Uint8Array | string): this {
    this.h.update(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    return this;
  }
  digest(): Buffer {
    return Buffer.from(this.h.digest());
  }
}

export function createHash(algorithm: string): Hash {
  if (algorithm !== 'sha256') throw new Error(`createHash(${algorithm}) is not available in the console`);
  return new Hash();
}

function unavailable(name: string): never {
  throw new Error(`node:crypto ${name} is not available in the console (signatures use WebCrypto)`);
}
export const createPrivateKey = () => unavailable('createPrivateKey');
export const createPublicKey = () => unavailable('createPublicKey');
export const generateKeyPairSync = () => unavailable('generateKeyPairSync');
export const sign = () => unavailable('sign');
export const verify = () => unavailable('verify');
export const randomBytes = () => unavailable('randomBytes');
export type KeyObject = never;
