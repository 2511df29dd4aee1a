// The witness: a small process that a tenant or a third party runs against fabrik's audit log so
// that the log cannot show one history to some and another to others (a "split view") without
// being caught. Each round it fetches the log's newest signed checkpoint, checks it extends the
// last one it saw (a consistency proof, RFC 9162), and only then cosigns it and hands the
// cosignature back to the log, which serves it with the checkpoint. Clients that require a
// witness's cosignature thus only accept tree heads that witness saw as one append-only history.
//
// What the witness remembers is one file: the last checkpoint it cosigned. It is written before
// the cosignature leaves the process, so the witness can never have vouched for a tree head it
// does not remember; and nothing the log sends can make it go back (a refusal leaves it as is).
// HTTP goes through an injectable fetch, so all of this is tested without a network.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { type OpenedCheckpoint, openCheckpoint } from './checkpoint.js';
import { cosign, generateWitnessKey, parseWitnessSignerKey } from './cosignature.js';
import { EMPTY_ROOT } from './merkle/hash.js';
import { ProofError, verifyConsistency } from './merkle/tree.js';
import { NoteError, type SignerKey, type VerifierKey, parseVerifierKey } from './note.js';

/** The part of fetch the witness uses (global fetch fits; tests may pass their own). */
export type FetchFn = (
  url: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{ status: number; text(): Promise<string> }>;

export interface WitnessConfig {
  /** The log's base URL, e.g. https://fabrik.example.eu (the witness adds /audit/…). */
  readonly logUrl: string;
  /** The log's verifier key (C2SP note format, type 0x01), pinned out of band. */
  readonly logKey: string | VerifierKey;
  /** The witness's own signer key (type 0x04, see cosignature.ts). */
  readonly witnessKey: string | SignerKey;
  readonly statePath: string;
  /** The log's origin line; by default the one in the state file, else whatever comes first. */
  readonly origin?: string;
  readonly fetch?: FetchFn;
  /** The clock, in POSIX seconds. */
  readonly now?: () => number;
  /** Per request (default 10 s). */
  readonly timeoutMs?: number;
}

/** The state file (JSON): the last checkpoint this witness cosigned. */
export interface WitnessState {
  readonly version: 1;
  readonly origin: string;
  readonly size: number;
  /** Base64, as in the checkpoint. */
  readonly rootHash: string;
  /** The signed checkpoint as the log served it: evidence, should the log later contradict it. */
  readonly checkpoint: string;
  /** The time of the last cosignature (POSIX seconds). */
  readonly cosignedAt: number;
}

/**
 * What one round came to. `split-view` and `inconsistent` are evidence against the log;
 * `invalid` is a checkpoint that does not verify; the others are trouble reaching the log.
 */
export type RoundResult =
  | {
      readonly ok: true;
      readonly origin: string;
      readonly size: number;
      readonly rootHash: Buffer;
      /** The size cosigned before (null on the first round). */
      readonly previousSize: number | null;
      /** The cosignature line sent to the log. */
      readonly cosignature: string;
    }
  | {
      readonly ok: false;
      readonly problem: 'split-view' | 'inconsistent' | 'invalid' | 'bad-state' | 'unreachable' | 'undelivered';
      readonly message: string;
      /** For split views and failed proofs: the checkpoint remembered and the one offered. */
      readonly evidence?: { readonly previous: string; readonly offered: string };
    };

type Problem = Extract<RoundResult, { ok: false }>['problem'];

/** Thrown inside a round to end it; witnessRound turns it into a RoundResult. */
class Refusal extends Error {
  constructor(
    readonly problem: Problem,
    message: string,
    readonly evidence?: { previous: string; offered: string },
  ) {
    super(message);
  }
}

const MAX_RESPONSE_CHARS = 1024 * 1024;
/** A consistency proof has at most about 2·log2(size) hashes: 128 covers every 2^53 tree. */
const MAX_PROOF_HASHES = 128;

/** One round: fetch, verify, cosign, remember, deliver. Never throws for what the log does. */
export async function witnessRound(cfg: WitnessConfig): Promise<RoundResult> {
  try {
    return await round(cfg);
  } catch (err) {
    if (err instanceof Refusal)
      return { ok: false, problem: err.problem, message: err.message, evidence: err.evidence };
    throw err;
  }
}

async function round(cfg: WitnessConfig): Promise<Extract<RoundResult, { ok: true }>> {
  const logKey = typeof cfg.logKey === 'string' ? parseVerifierKey(cfg.logKey) : cfg.logKey;
  const witnessKey = typeof cfg.witnessKey === 'string' ? parseWitnessSignerKey(cfg.witnessKey) : cfg.witnessKey;
  const base = cfg.logUrl.replace(/\/+$/, '');
  const last = readStateOrRefuse(cfg.statePath);
  if (last && cfg.origin !== undefined && last.origin !== cfg.origin)
    throw new Refusal(
      'bad-state',
      `the state file is for ${JSON.stringify(last.origin)}, not ${JSON.stringify(cfg.origin)}`,
    );

  const offered = await get(cfg, `${base}/audit/checkpoint`);
  let cp: OpenedCheckpoint;
  try {
    cp = openCheckpoint(offered, logKey, { origin: last?.origin ?? cfg.origin });
  } catch (err) {
    if (err instanceof NoteError) throw new Refusal('invalid', `checkpoint refused: ${err.message}`);
    throw err;
  }
  if (cp.size === 0 && !cp.rootHash.equals(EMPTY_ROOT))
    throw new Refusal('invalid', 'checkpoint refused: an empty tree whose root is not SHA-256 of nothing');

  if (last) {
    const evidence = { previous: last.checkpoint, offered };
    const lastRoot = Buffer.from(last.rootHash, 'base64');
    if (cp.size < last.size)
      throw new Refusal(
        'split-view',
        `SPLIT VIEW: the log now shows a tree of ${cp.size} entries after signing one of ${last.size}`,
        evidence,
      );
    if (cp.size === last.size && !cp.rootHash.equals(lastRoot))
      throw new Refusal('split-view', `SPLIT VIEW: the log signed two different trees of ${cp.size} entries`, evidence);
    if (cp.size > last.size) {
      // The log does not serve proofs from size 0: every tree extends the empty one.
      const proof = last.size === 0 ? [] : await consistencyProof(cfg, base, last.size, cp.size, evidence);
      try {
        verifyConsistency(last.size, cp.size, proof, lastRoot, cp.rootHash);
      } catch (err) {
        if (!(err instanceof ProofError)) throw err;
        throw new Refusal(
          'inconsistent',
          `inconsistent: the tree of ${cp.size} does not extend the one of ${last.size} cosigned before (${err.message}); SPLIT VIEW or rewritten history`,
          evidence,
        );
      }
    }
  }

  // Never date a cosignature before the previous one, even if the clock stepped back: clients
  // take the newest cosignature as the witness's current view.
  const time = Math.max(Math.floor((cfg.now ?? (() => Date.now() / 1000))()), last?.cosignedAt ?? 0);
  const line = cosign(cp.body, witnessKey, time);
  writeState(cfg.statePath, {
    version: 1,
    origin: cp.origin,
    size: cp.size,
    rootHash: cp.rootHash.toString('base64'),
    checkpoint: offered,
    cosignedAt: time,
  });
  await post(cfg, `${base}/audit/cosignatures`, { checkpoint: offered, cosignature: line });
  return {
    ok: true,
    origin: cp.origin,
    size: cp.size,
    rootHash: cp.rootHash,
    previousSize: last?.size ?? null,
    cosignature: line,
  };
}

/** GET <log>/audit/proof/consistency and check its shape; a proof that does not parse is refused. */
async function consistencyProof(
  cfg: WitnessConfig,
  base: string,
  from: number,
  to: number,
  evidence: { previous: string; offered: string },
): Promise<Buffer[]> {
  const text = await get(cfg, `${base}/audit/proof/consistency?from=${from}&to=${to}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const b = body as { size1?: unknown; size2?: unknown; proof?: unknown } | undefined;
  const hashes = Array.isArray(b?.proof) ? b.proof : undefined;
  if (
    b?.size1 !== from ||
    b?.size2 !== to ||
    !hashes ||
    hashes.length > MAX_PROOF_HASHES ||
    !hashes.every((h) => typeof h === 'string' && /^[0-9a-fA-F]{64}$/.test(h))
  )
    throw new Refusal(
      'inconsistent',
      `inconsistent: the log gave no well-formed consistency proof from ${from} to ${to}`,
      evidence,
    );
  return hashes.map((h: string) => Buffer.from(h, 'hex'));
}

async function get(cfg: WitnessConfig, url: string): Promise<string> {
  const res = await request(cfg, url, { method: 'GET' });
  if (res.status !== 200) throw new Refusal('unreachable', `GET ${url}: HTTP ${res.status} ${excerpt(res.body)}`);
  return res.body;
}

async function post(cfg: WitnessConfig, url: string, body: unknown): Promise<void> {
  const res = await request(cfg, url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status < 200 || res.status > 299)
    throw new Refusal('undelivered', `cosigned, but POST ${url} answered HTTP ${res.status} ${excerpt(res.body)}`);
}

async function request(
  cfg: WitnessConfig,
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  const fetchFn = cfg.fetch ?? (fetch as unknown as FetchFn);
  try {
    const res = await fetchFn(url, { ...init, signal: AbortSignal.timeout(cfg.timeoutMs ?? 10_000) });
    const body = await res.text();
    if (body.length > MAX_RESPONSE_CHARS) throw new Refusal('unreachable', `${init.method} ${url}: response too large`);
    return { status: res.status, body };
  } catch (err) {
    if (err instanceof Refusal) throw err;
    throw new Refusal(
      init.method === 'POST' ? 'undelivered' : 'unreachable',
      `${init.method} ${url}: ${(err as Error).message}`,
    );
  }
}

const excerpt = (s: string) => JSON.stringify(s.slice(0, 200));

// ---------------------------------------------------------------------------------------------
// The state file and the key file

/** The state, or null before the first cosignature. A state that does not parse is an error:
 *  starting over would make the witness trust whatever the log shows next. */
export function readState(path: string): WitnessState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const s = JSON.parse(text) as Partial<WitnessState>;
  const root = typeof s.rootHash === 'string' ? Buffer.from(s.rootHash, 'base64') : Buffer.alloc(0);
  if (
    s.version !== 1 ||
    typeof s.origin !== 'string' ||
    !Number.isSafeInteger(s.size) ||
    (s.size as number) < 0 ||
    root.length !== 32 ||
    typeof s.checkpoint !== 'string' ||
    !Number.isSafeInteger(s.cosignedAt)
  )
    throw new Error(`${path} is not a witness state file`);
  return s as WitnessState;
}

function readStateOrRefuse(path: string): WitnessState | null {
  try {
    return readState(path);
  } catch (err) {
    throw new Refusal('bad-state', `state file: ${(err as Error).message}; fix or remove it knowingly`);
  }
}

/** Writes the state atomically: a temporary file in the same directory, flushed, then renamed. */
export function writeState(path: string, state: WitnessState): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeDurably(tmp, `${JSON.stringify(state, null, 2)}\n`, 'w', 0o644);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // The rename itself is durable once the directory is flushed (not possible on every platform).
  try {
    const dir = openSync(dirname(path), 'r');
    fsyncSync(dir);
    closeSync(dir);
  } catch {}
}

/** Creates a witness key file (mode 0600; never overwrites one) and returns its verifier key. */
export function createWitnessKeyFile(path: string, name: string): string {
  const { signerKey, verifierKey } = generateWitnessKey(name);
  writeDurably(path, `${signerKey}\n`, 'wx', 0o600);
  return verifierKey;
}

/** Reads a witness signer key file. */
export function readWitnessKeyFile(path: string): SignerKey {
  return parseWitnessSignerKey(readFileSync(path, 'utf8').trim());
}

function writeDurably(path: string, text: string, flags: 'w' | 'wx', mode: number): void {
  const fd = openSync(path, flags, mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The loop

/**
 * Runs rounds every `intervalMs` until `signal` aborts (or once), reporting each; returns the
 * last result. A refusal does not stop the loop: the witness keeps refusing that log's view.
 */
export async function runWitness(
  cfg: WitnessConfig,
  opts: { intervalMs: number; once?: boolean; signal?: AbortSignal; report?: (r: RoundResult) => void },
): Promise<RoundResult | undefined> {
  let result: RoundResult | undefined;
  while (!opts.signal?.aborted) {
    result = await witnessRound(cfg);
    opts.report?.(result);
    if (opts.once) break;
    await sleep(opts.intervalMs, opts.signal);
  }
  return result;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
