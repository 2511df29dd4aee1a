// `fabrik push` and `fabrik pull` (src/cli/transfer/, src/cli/commands/registry.ts).
// Part 1, unit: references, tree paths, Link headers, the directory walk, and the resume
// bookkeeping of push and pull against FakeHub, a tiny in-test fake of the Hub protocol (only for
// these unit tests: it stores plaintext in memory and checks what a client must send).
// Part 2, end to end: the CLI as child processes against a real server process on SQLite with the
// filesystem blob store: push of a directory (a 40 MiB file that goes multipart), pull byte for
// byte, a re-push that sends nothing, a push killed -9 mid-upload and resumed (fewer bytes sent),
// a pull killed -9 and resumed with Range, and exit code 3 for a repo that does not exist.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CliError } from '../../src/cli/client.js';
import { EXIT } from '../../src/cli/output.js';
import {
  HashCache,
  type RepoRef,
  nextLink,
  parseRef,
  pull,
  push,
  safeRepoPath,
  scanDirectory,
} from '../../src/cli/transfer/index.js';
import { parseRate } from '../../src/cli/commands/registry.js';
import { ENTRY, REPO_ROOT, type ServerProcess, api, eventually, startServerProcess } from '../helpers/child-server.js';
import { OPERATOR_TOKEN, type TestDatabase, freshDatabase } from '../helpers/harness.js';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A valid safetensors file of about `size` bytes: one U8 tensor of random bytes. */
function safetensors(size: number): Buffer {
  const json = (n: number) => JSON.stringify({ weight: { dtype: 'U8', shape: [n], data_offsets: [0, n] } });
  let header = Buffer.from(json(size).padEnd(((json(size).length + 7) >> 3) << 3, ' '));
  const n = size - 8 - header.length;
  header = Buffer.from(json(n).padEnd(header.length, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, randomBytes(n)]);
}

function usageError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof CliError && err.exitCode === EXIT.usage && re.test(err.message));
}

/** Every regular file under `dir`, path → sha256. */
function digestsOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p).split('\\').join('/')] = sha256(readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 1: unit

describe('unit: references, paths, Link headers, rates', () => {
  it('parses model and dataset references with and without a revision', () => {
    assert.deepEqual(parseRef('acme.train/llama-3.1-8b'), {
      type: 'model',
      namespace: 'acme.train',
      name: 'llama-3.1-8b',
      revision: 'main',
      explicitRevision: false,
    });
    assert.deepEqual(parseRef('acme.train/llama:v3'), {
      type: 'model',
      namespace: 'acme.train',
      name: 'llama',
      revision: 'v3',
      explicitRevision: true,
    });
    const ds = parseRef('datasets/acme.train/sft_v2:0123456789abcdef0123456789abcdef01234567');
    assert.equal(ds.type, 'dataset');
    assert.equal(ds.revision, '0123456789abcdef0123456789abcdef01234567');
    assert.equal(parseRef('acme.train/corpus', { dataset: true }).type, 'dataset');
    assert.equal(parseRef('acme.train/corpus', { revision: 'dev' }).revision, 'dev');
    assert.equal(parseRef('acme.train/corpus:dev', { revision: 'dev' }).revision, 'dev');
  });

  it('refuses malformed references as usage errors (exit 2)', () => {
    usageError(() => parseRef('llama'), /no "\/"/);
    usageError(() => parseRef('acme/llama'), /not <org>\.<project>/);
    usageError(() => parseRef('Acme.train/llama'), /not <org>\.<project>/);
    usageError(() => parseRef('acme.train/'), /not a repository name/);
    usageError(() => parseRef('acme.train/a/b'), /not a repository name/);
    usageError(() => parseRef('acme.train/x.git'), /not a repository name/);
    usageError(() => parseRef('acme.train/x:'), /empty revision/);
    usageError(() => parseRef('acme.train/x:a..b'), /not a revision/);
    usageError(() => parseRef('acme.train/x:v1', { revision: 'v2' }), /--revision/);
    usageError(() => parseRef('models/acme.train/x', { dataset: true }), /--dataset/);
  });

  it('refuses tree paths that are absolute or climb out', () => {
    assert.equal(safeRepoPath('a/b/c.bin'), 'a/b/c.bin');
    for (const p of ['/etc/passwd', '../x', 'a/../../x', 'a/..', 'C:/x', 'a\\b', 'a//b', './a', ''])
      assert.throws(() => safeRepoPath(p), /refusing tree path/, p);
  });

  it('follows Link rel=next, absolute or relative', () => {
    const base = 'http://h:1/hub/api/models/a.b/c/tree/x?recursive=true';
    assert.equal(nextLink('<http://h:1/next?cursor=2>; rel="next"', base), 'http://h:1/next?cursor=2');
    assert.equal(nextLink('</hub/p?cursor=3>; rel=next', base), 'http://h:1/hub/p?cursor=3');
    assert.equal(nextLink('<http://h:1/p>; rel="prev", <http://h:1/n>; rel="next"', base), 'http://h:1/n');
    assert.equal(nextLink(null, base), undefined);
    assert.equal(nextLink('<http://h:1/p>; rel="prev"', base), undefined);
  });

  it('parses --limit-rate like curl', () => {
    assert.equal(parseRate('1000'), 1000);
    assert.equal(parseRate('500K'), 500 * 1024);
    assert.equal(parseRate('20m'), 20 * MiB);
    assert.equal(parseRate(undefined), undefined);
    assert.throws(() => parseRate('fast'), /not a rate/);
  });
});

describe('unit: the directory walk', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fabrik-scan-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('lists regular files, follows links inside, lists what it skips, refuses links out', async () => {
    const d = join(root, 'model');
    mkdirSync(join(d, 'sub/deeper'), { recursive: true });
    mkdirSync(join(d, '.git'));
    mkdirSync(join(d, 'empty'));
    writeFileSync(join(d, 'README.md'), '# hi\n');
    writeFileSync(join(d, 'sub/deeper/w.bin'), 'weights');
    writeFileSync(join(d, '.git/HEAD'), 'ref: x');
    symlinkSync('sub/deeper/w.bin', join(d, 'alias.bin'));
    symlinkSync('sub', join(d, 'subdir-link'));
    symlinkSync('nowhere', join(d, 'dangling'));
    execFileSync('mkfifo', [join(d, 'pipe')]);
    const { files, skipped } = await scanDirectory(d);
    assert.deepEqual(
      files.map((f) => [f.path, f.size]),
      [
        ['README.md', 5],
        ['alias.bin', 7],
        ['sub/deeper/w.bin', 7],
      ],
    );
    assert.deepEqual(skipped.map((s) => s.path).sort(), ['.git/', 'dangling', 'empty/', 'pipe', 'subdir-link']);
    assert.match(skipped.find((s) => s.path === 'pipe')!.reason, /not a regular file \(fifo\)/);

    writeFileSync(join(root, 'secret'), 'x');
    symlinkSync('../secret', join(d, 'escape'));
    await assert.rejects(
      scanDirectory(d),
      (err: unknown) => err instanceof CliError && err.exitCode === EXIT.usage && /outside/.test(err.message),
    );
    await assert.rejects(
      scanDirectory(join(root, 'missing')),
      (err: unknown) => (err as CliError).exitCode === EXIT.usage,
    );
  });
});

/** FakeHub: the Hub protocol's upload and download sides, in memory, for the unit tests only. */
class FakeHub {
  readonly blobs = new Map<string, Buffer>();
  readonly repos = new Map<
    string,
    { commits: Map<string, Record<string, { oid: string; size: number }>>; head?: string }
  >();
  readonly uploads = new Map<string, { oid: string; size: number; parts: Map<number, Buffer> }>();
  /** Every request: method, path, and whether it carried Authorization. */
  readonly log: { method: string; path: string; auth?: string; range?: string }[] = [];
  /** Part numbers to fail (once each) with a 500 while the client sends them. */
  failParts = new Set<number>();
  /** Tree entries served in addition to the real ones (to test refusal of bad paths). */
  extraTree: { type: 'file'; path: string; size: number; oid: string; lfs: { oid: string; size: number } }[] = [];
  chunk = MiB;
  private server?: Server;
  url = '';
  private n = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: String(err) } }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server!.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private notFound(res: ServerResponse, code: string): void {
    this.json(res, 404, { error: { code, message: `${code}` } }, { 'x-error-code': code });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url!, this.url);
    const path = decodeURIComponent(u.pathname);
    this.log.push({ method: req.method!, path, auth: req.headers.authorization, range: req.headers.range });
    let m = null as RegExpExecArray | null;
    /** Matches `re` against `text` (default: the path), keeping the groups in `m`. */
    const match = (re: RegExp, text = path): boolean => {
      m = re.exec(text);
      return m !== null;
    };
    if (!path.startsWith('/hub/lfs/') && req.headers.authorization !== 'Bearer hf_fbk_test') {
      this.json(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'bad key' } });
      return;
    }
    if (req.method === 'POST' && path === '/hub/api/repos/create') {
      const b = JSON.parse((await this.body(req)).toString());
      const id = `${b.type}:${b.organization}/${b.name}`;
      if (this.repos.has(id)) return this.json(res, 409, { url: 'x', error: 'exists' });
      this.repos.set(id, { commits: new Map() });
      return this.json(res, 200, { url: `${this.url}/${b.organization}/${b.name}` });
    }
    if (match(/^\/hub\/api\/(models|datasets)\/([^/]+)\/([^/]+)(?:\/(.*))?$/) && m) {
      const id = `${m[1].slice(0, -1)}:${m[2]}/${m[3]}`;
      const repo = this.repos.get(id);
      if (!repo) return this.notFound(res, 'RepoNotFound');
      const rest = m[4];
      if (rest === undefined) return this.json(res, 200, { id: `${m[2]}/${m[3]}`, sha: repo.head });
      const rev = /^revision\/(.+)$/.exec(rest ?? '');
      if (rev) {
        const r = rev;
        const sha = r[1] === 'main' ? repo.head : repo.commits.has(r[1]) ? r[1] : undefined;
        return sha ? this.json(res, 200, { sha }) : this.notFound(res, 'RevisionNotFound');
      }
      const tree = /^tree\/([0-9a-f]{40})$/.exec(rest);
      if (tree) {
        const r = tree;
        const files = repo.commits.get(r[1]);
        if (!files) return this.notFound(res, 'RevisionNotFound');
        const all = [
          ...Object.entries(files).map(([p, f]) => ({
            type: 'file',
            path: p,
            size: f.size,
            oid: 'x',
            lfs: { oid: f.oid, size: f.size },
          })),
          ...this.extraTree,
        ];
        // Two entries a page, to exercise Link rel=next.
        const at = Number(u.searchParams.get('cursor') ?? 0);
        const next =
          at + 2 < all.length ? `<${this.url}${u.pathname}?recursive=true&cursor=${at + 2}>; rel="next"` : undefined;
        return this.json(res, 200, all.slice(at, at + 2), next ? { link: next } : {});
      }
      if (/^preupload\//.test(rest)) {
        const b = JSON.parse((await this.body(req)).toString());
        return this.json(res, 200, {
          files: b.files.map((f: any) => ({ path: f.path, uploadMode: 'lfs', shouldIgnore: f.path === 'ignored.txt' })),
        });
      }
      if (/^commit\/main$/.test(rest)) {
        const lines = (await this.body(req))
          .toString()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        const header = lines[0].value;
        if ((header.parentCommit ?? undefined) !== repo.head) return this.json(res, 409, { error: 'stale parent' });
        const files = { ...(repo.head ? repo.commits.get(repo.head) : {}) };
        for (const l of lines.slice(1)) {
          assert.equal(l.key, 'lfsFile');
          if (!this.blobs.has(l.value.oid))
            return this.json(res, 422, { error: { code: 'BLOB_NOT_FOUND', message: l.value.path } });
          files[l.value.path] = { oid: l.value.oid, size: l.value.size };
        }
        const oid = sha256(Buffer.from(JSON.stringify([repo.head, files, this.n++]))).slice(0, 40);
        repo.commits.set(oid, files);
        repo.head = oid;
        return this.json(res, 200, { commitOid: oid, commitUrl: `${this.url}/x/commit/${oid}`, success: true });
      }
    }
    if (req.method === 'POST' && match(/^\/hub\/(?:datasets\/)?[^/]+\/[^/]+\.git\/info\/lfs\/objects\/batch$/)) {
      const b = JSON.parse((await this.body(req)).toString());
      assert.deepEqual(b.transfers, ['multipart', 'basic']);
      assert.equal(b.hash_algo, 'sha256');
      const objects = b.objects.map((o: { oid: string; size: number }) => {
        if (this.blobs.has(o.oid)) return { oid: o.oid, size: o.size };
        let id = [...this.uploads.entries()].find(([, up]) => up.oid === o.oid)?.[0];
        if (!id) {
          id = `upl${this.uploads.size}`;
          this.uploads.set(id, { oid: o.oid, size: o.size, parts: new Map() });
        }
        const base = `${this.url}/hub/lfs/uploads/${id}`;
        const n = Math.max(1, Math.ceil(o.size / this.chunk));
        if (n === 1) return { oid: o.oid, size: o.size, actions: { upload: { href: `${base}/parts/1?token=t` } } };
        const header: Record<string, string> = { chunk_size: String(this.chunk) };
        for (let i = 1; i <= n; i++) header[String(i).padStart(5, '0')] = `${base}/parts/${i}?token=t`;
        return { oid: o.oid, size: o.size, actions: { upload: { href: `${base}?token=t`, header } } };
      });
      return this.json(res, 200, { transfer: 'multipart', objects });
    }
    if (match(/^\/hub\/lfs\/uploads\/([^/]+)(?:\/parts\/(\d+))?$/) && m) {
      assert.equal(req.headers.authorization, undefined, 'upload URLs get no Authorization header');
      assert.equal(u.searchParams.get('token'), 't');
      const up = this.uploads.get(m[1]);
      if (!up) return this.notFound(res, 'NOT_FOUND');
      const n = Math.max(1, Math.ceil(up.size / this.chunk));
      if (req.method === 'PUT') {
        const part = Number(m[2]);
        const expected = n === 1 ? up.size : Math.min(this.chunk, up.size - (part - 1) * this.chunk);
        assert.equal(Number(req.headers['content-length']), expected, 'Content-Length is set');
        if (this.failParts.delete(part)) {
          req.resume();
          return this.json(res, 500, { error: { code: 'INTERNAL', message: 'injected' } });
        }
        const data = await this.body(req);
        assert.equal(data.length, expected);
        up.parts.set(part, data);
        if (n === 1) {
          if (sha256(data) !== up.oid)
            return this.json(res, 400, { error: { code: 'DIGEST_MISMATCH', message: 'no' } });
          this.blobs.set(up.oid, data);
          this.uploads.delete(m[1]);
        }
        res.writeHead(200, { etag: `"e${part}-${sha256(data).slice(0, 8)}"` });
        return void res.end();
      }
      if (req.method === 'GET')
        return this.json(res, 200, {
          oid: up.oid,
          size: up.size,
          chunkSize: this.chunk,
          status: 'open',
          parts: [...up.parts.entries()].map(([partNumber, d]) => ({
            partNumber,
            etag: `"e${partNumber}-${sha256(d).slice(0, 8)}"`,
            size: d.length,
          })),
        });
      if (req.method === 'POST') {
        const b = JSON.parse((await this.body(req)).toString());
        assert.equal(b.parts.length, n);
        const whole = Buffer.concat(b.parts.map((p: { partNumber: number }) => up.parts.get(p.partNumber)!));
        if (sha256(whole) !== up.oid) return this.json(res, 400, { error: { code: 'DIGEST_MISMATCH', message: 'no' } });
        this.blobs.set(up.oid, whole);
        this.uploads.delete(m[1]);
        return this.json(res, 200, {});
      }
    }
    if (req.method === 'GET' && match(/^\/hub\/(?:datasets\/)?([^/]+)\/([^/]+)\/resolve\/([0-9a-f]{40})\/(.+)$/) && m) {
      const repo = [...this.repos.entries()].find(([id]) => id.endsWith(`:${m![1]}/${m![2]}`))?.[1];
      const f = repo?.commits.get(m[3])?.[m[4]];
      if (!f) return this.notFound(res, 'EntryNotFound');
      const data = this.blobs.get(f.oid)!;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        if (start >= data.length) return this.json(res, 416, {});
        res.writeHead(206, {
          'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
          'content-length': data.length - start,
        });
        return void res.end(data.subarray(start));
      }
      res.writeHead(200, { 'content-length': data.length });
      return void res.end(data);
    }
    this.json(res, 404, { error: { code: 'NOT_FOUND', message: `${req.method} ${path}` } });
  }
}

describe('unit: push and pull against FakeHub (resume bookkeeping)', () => {
  const fake = new FakeHub();
  let root: string;
  let src: string;
  let cacheFile: string;
  const ref: RepoRef = parseRef('acme.train/llama');
  const opts = () => ({ endpoint: fake.url, apiKey: 'fbk_test', hashCache: cacheFile, attempts: 1 });

  before(async () => {
    await fake.start();
    root = mkdtempSync(join(tmpdir(), 'fabrik-fake-'));
    cacheFile = join(root, 'cache', 'hashes.json');
    src = join(root, 'src');
    mkdirSync(join(src, 'nested/deep'), { recursive: true });
    writeFileSync(join(src, 'README.md'), '# llama\n');
    writeFileSync(join(src, 'big.bin'), randomBytes(5 * MiB + 123));
    writeFileSync(join(src, 'nested/deep/small.json'), '{"a":1}');
    writeFileSync(join(src, 'nested/copy.bin'), readFileSync(join(src, 'big.bin')));
    writeFileSync(join(src, 'ignored.txt'), 'the fake says to ignore this');
  });
  after(async () => {
    await fake.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('pushes: creates the repo, sends each content once, commits; upload URLs carry no Authorization', async () => {
    const progress: string[] = [];
    const r = await push(src, ref, { ...opts(), onProgress: (p) => progress.push(p.phase) });
    const total = 8 + 2 * (5 * MiB + 123) + 7 + 28;
    assert.equal(r.bytes, total);
    assert.equal(r.files, 4, 'ignored.txt is not pushed');
    assert.deepEqual(r.skipped, [{ path: 'ignored.txt', reason: 'the server ignores this path' }]);
    assert.equal(r.sentBytes, 8 + 5 * MiB + 123 + 7, 'the duplicate content is sent once');
    assert.equal(r.sentBytes + r.skippedBytes, total - 28);
    assert.equal(r.unchanged, false);
    assert.equal(fake.repos.get('model:acme.train/llama')!.head, r.commit);
    for (const phase of ['hash', 'upload', 'commit']) assert.ok(progress.includes(phase), phase);
    for (const l of fake.log) {
      if (l.path.startsWith('/hub/lfs/')) assert.equal(l.auth, undefined);
      else assert.equal(l.auth, 'Bearer hf_fbk_test');
    }
    assert.equal(
      fake.log.filter((l) => l.method === 'PUT' && l.path.endsWith('/parts/6')).length,
      1,
      '6 parts of 1 MiB',
    );
  });

  it('a second push of the same files is a no-op: no hashing (cache), no upload, no commit', async () => {
    const before = fake.repos.get('model:acme.train/llama')!.head;
    const commitsBefore = fake.log.filter((l) => l.path.includes('/commit/')).length;
    const r = await push(src, ref, opts());
    assert.equal(r.unchanged, true);
    assert.equal(r.commit, before);
    assert.equal(r.sentBytes, 0);
    assert.equal(r.cachedHashBytes, r.bytes);
    assert.equal(fake.log.filter((l) => l.path.includes('/commit/')).length, commitsBefore);
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8'));
    const big = statSync(join(src, 'big.bin'));
    assert.equal(
      cached[HashCache.key(join(src, 'big.bin'), big)].sha256,
      sha256(readFileSync(join(src, 'big.bin'))),
      'keyed by path, size, mtime and inode',
    );
  });

  it('a failed multipart push resumes: only the parts the server did not confirm are sent', async () => {
    const other = parseRef('acme.train/other');
    const d = join(root, 'resume');
    mkdirSync(d);
    writeFileSync(join(d, 'w.bin'), randomBytes(4 * MiB));
    fake.failParts = new Set([3]);
    await assert.rejects(
      push(d, other, { ...opts(), parallel: 1 }),
      (err: unknown) => err instanceof CliError && /part 3/.test(err.message) && err.body.error.code === 'INTERNAL',
    );
    const putsBefore = fake.log.filter((l) => l.method === 'PUT').length;
    const r = await push(d, other, { ...opts(), parallel: 2 });
    assert.equal(r.sentBytes, 2 * MiB, 'parts 3 and 4 only (1, 2 were confirmed)');
    assert.equal(r.skippedBytes, 2 * MiB);
    assert.equal(r.cachedHashBytes, 4 * MiB, 'not hashed again');
    assert.equal(fake.log.filter((l) => l.method === 'PUT').length - putsBefore, 2);
    const got = join(root, 'resume-pulled');
    await pull(other, got, opts());
    assert.deepEqual(digestsOf(got), digestsOf(d));
  });

  it('retries a part that fails with a 5xx (when attempts allow)', async () => {
    const d = join(root, 'retry');
    mkdirSync(d);
    writeFileSync(join(d, 'w.bin'), randomBytes(3 * MiB));
    fake.failParts = new Set([2]);
    const r = await push(d, parseRef('acme.train/retry'), { ...opts(), attempts: 2 });
    assert.equal(fake.failParts.size, 0, 'the failure was injected');
    assert.equal(r.sentBytes, 3 * MiB);
  });

  it('pulls byte for byte, following tree pages; a second pull keeps what is there', async () => {
    const dest = join(root, 'pulled');
    const r = await pull(ref, dest, { ...opts(), parallel: 2 });
    const want = digestsOf(src);
    delete want['ignored.txt'];
    assert.deepEqual(digestsOf(dest), want);
    assert.equal(r.receivedBytes, r.bytes);
    assert.equal(r.files, 4);
    const again = await pull(ref, dest, opts());
    assert.equal(again.receivedBytes, 0);
    assert.equal(again.skippedBytes, again.bytes);
  });

  it('resumes a .part with Range, and starts over when the kept bytes were wrong', async () => {
    const dest = join(root, 'partial');
    mkdirSync(dest);
    const big = readFileSync(join(src, 'big.bin'));
    writeFileSync(join(dest, 'big.bin.part'), big.subarray(0, 3 * MiB));
    const r = await pull(ref, dest, opts());
    assert.equal(r.resumedBytes, 3 * MiB);
    assert.equal(r.receivedBytes, r.bytes - 3 * MiB);
    assert.ok(fake.log.some((l) => l.range === `bytes=${3 * MiB}-`));
    assert.equal(sha256(readFileSync(join(dest, 'big.bin'))), sha256(big));
    assert.ok(!existsSync(join(dest, 'big.bin.part')));

    const bad = join(root, 'corrupt');
    mkdirSync(bad);
    writeFileSync(join(bad, 'big.bin.part'), randomBytes(MiB));
    await pull(ref, bad, opts());
    assert.equal(sha256(readFileSync(join(bad, 'big.bin'))), sha256(big), 'a wrong .part is replaced');
  });

  it('refuses tree paths that climb out of the directory', async () => {
    fake.extraTree = [{ type: 'file', path: '../evil', size: 1, oid: 'x', lfs: { oid: 'a'.repeat(64), size: 1 } }];
    try {
      const dest = join(root, 'evil');
      await assert.rejects(pull(ref, dest, opts()), /refusing tree path "\.\.\/evil"/);
      assert.ok(!existsSync(join(root, 'evil', '..', 'evil.part')));
    } finally {
      fake.extraTree = [];
    }
  });

  it('maps answers to exit codes: 404 → 3, 401 → 4, unreachable → 7', async () => {
    const missing = parseRef('acme.train/nothing');
    await assert.rejects(
      pull(missing, join(root, 'x'), opts()),
      (err: unknown) => (err as CliError).exitCode === EXIT.notFound,
    );
    await assert.rejects(
      pull(ref, join(root, 'x'), { ...opts(), apiKey: 'wrong' }),
      (err: unknown) =>
        (err as CliError).exitCode === EXIT.auth && (err as CliError).body.error.code === 'UNAUTHENTICATED',
    );
    await assert.rejects(
      pull(ref, join(root, 'x'), { ...opts(), endpoint: 'http://127.0.0.1:9' }),
      (err: unknown) => (err as CliError).exitCode === EXIT.unreachable,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Part 2: the CLI against a real server

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('fabrik push and pull against a real server', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  let root: string;
  let token: string;
  let env: Record<string, string | undefined>;

  function fabrik(args: string[]): { child: ChildProcess; done: Promise<Run> } {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const done = new Promise<Run>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
    return { child, done };
  }

  async function ok(args: string[]): Promise<any> {
    const r = await fabrik([...args, '-o', 'json']).done;
    assert.equal(r.code, 0, `fabrik ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** The upload status of `oid` in the org: the batch answer gives the open upload (resume). */
  async function confirmedParts(repo: string, oid: string, size: number): Promise<number> {
    const res = await fetch(`${server.url}/hub/${repo}.git/info/lfs/objects/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer hf_${token}`, 'content-type': 'application/vnd.git-lfs+json' },
      body: JSON.stringify({
        operation: 'upload',
        transfers: ['multipart', 'basic'],
        hash_algo: 'sha256',
        objects: [{ oid, size }],
      }),
    });
    const body: any = await res.json();
    const href = body.objects?.[0]?.actions?.upload?.href;
    if (!href) return -1; // stored already
    const status: any = await (await fetch(href)).json();
    return status.parts?.length ?? 0;
  }

  before(async () => {
    db = await freshDatabase('sqlite');
    root = mkdtempSync(join(tmpdir(), 'fabrik-pushpull-'));
    server = await startServerProcess({
      database: db.url,
      dataDir: join(root, 'data'),
      bootstrapToken: OPERATOR_TOKEN,
    });
    const call = api(server.url, OPERATOR_TOKEN);
    for (const [path, body] of [
      ['/api/v1/orgs', { name: 'acme', residency: 'de' }],
      ['/api/v1/orgs/acme/projects', { name: 'train' }],
      ['/api/v1/orgs/acme/members', { user: 'alice', role: 'owner' }],
    ] as const) {
      const r = await call('POST', path, body);
      assert.ok(r.status === 201 || r.status === 200, `${path}: ${r.status} ${r.text}`);
    }
    const key = await call('POST', '/api/v1/orgs/acme/keys', { name: 'alice', user: 'alice' });
    assert.equal(key.status, 201, key.text);
    token = key.body.token;
    env = {
      ...process.env,
      FABRIK_ENDPOINT: server.url,
      FABRIK_API_KEY: token,
      FABRIK_CONFIG: join(root, 'no-config.json'),
      XDG_CACHE_HOME: join(root, 'cache'),
      NO_COLOR: '1',
    };

    const src = join(root, 'src');
    mkdirSync(join(src, 'nested/deeper'), { recursive: true });
    writeFileSync(join(src, 'README.md'), '---\nlicense: apache-2.0\n---\n# tiny\n');
    writeFileSync(join(src, 'model.safetensors'), safetensors(40 * MiB));
    writeFileSync(join(src, 'nested/config.json'), JSON.stringify({ hidden: 64 }));
    writeFileSync(join(src, 'nested/deeper/tokenizer.json'), randomBytes(300_000).toString('base64'));
  });

  after(async () => {
    await server?.stop();
    await db?.drop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('pushes a directory (multipart for 40 MiB), pulls it back byte for byte; a re-push sends nothing', async () => {
    const src = join(root, 'src');
    const pushed = await ok(['push', src, 'acme.train/tiny', '-m', 'first']);
    assert.equal(pushed.files, 4);
    assert.equal(pushed.sentBytes, pushed.bytes);
    assert.match(pushed.commit, /^[0-9a-f]{40}$/);
    assert.deepEqual(pushed.skipped, []);

    const pulled = await ok(['pull', 'acme.train/tiny', join(root, 'pulled')]);
    assert.equal(pulled.commit, pushed.commit);
    assert.equal(pulled.receivedBytes, pushed.bytes);
    assert.deepEqual(digestsOf(join(root, 'pulled')), digestsOf(src));

    const again = await ok(['push', src, 'acme.train/tiny']);
    assert.equal(again.sentBytes, 0, 'a re-push sends nothing');
    assert.equal(again.commit, pushed.commit);

    // The same content as another repo of the org: deduplicated, nothing sent, a new commit.
    const copy = await ok(['push', src, 'acme.train/tiny-copy', '--parallel', '2']);
    assert.equal(copy.sentBytes, 0);
    assert.notEqual(copy.commit, pushed.commit);

    // Human output: a line that says what happened, no progress bar off a terminal.
    const human = await fabrik(['push', src, 'acme.train/tiny']).done;
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /model acme\.train\/tiny:main already holds these 4 files/);
    assert.equal(human.stderr, '');
  });

  it('pushes and pulls a dataset (datasets/ prefix or --dataset)', async () => {
    const d = join(root, 'src', 'nested');
    const pushed = await ok(['push', d, 'acme.train/corpus', '--dataset', '-m', 'data']);
    assert.equal(pushed.type, 'dataset');
    assert.equal(pushed.repo, 'datasets/acme.train/corpus');
    const back = join(root, 'corpus');
    const pulled = await ok(['pull', `datasets/acme.train/corpus:${pushed.commit}`, back]);
    assert.equal(pulled.commit, pushed.commit);
    assert.deepEqual(digestsOf(back), digestsOf(d));
    const asModel = await fabrik(['pull', 'acme.train/corpus', join(root, 'no-model')]).done;
    assert.equal(asModel.code, 3, 'a dataset is not a model');
  });

  it('resumes a push killed -9 mid-upload: fewer bytes sent, and it pulls back identical', async (t) => {
    const d = join(root, 'resume');
    mkdirSync(d);
    const big = randomBytes(40 * MiB);
    writeFileSync(join(d, 'weights.bin'), big);
    writeFileSync(join(d, 'README.md'), '# resumed\n');
    const oid = sha256(big);
    const run = fabrik(['push', d, 'acme.train/resumed', '--parallel', '1', '--limit-rate', '12M', '-o', 'json']);
    await eventually(
      async () => ((await confirmedParts('acme.train/resumed', oid, big.length)) >= 1 ? true : undefined),
      60_000,
      'the server to confirm a part',
    );
    run.child.kill('SIGKILL');
    const killed = await run.done;
    assert.equal(killed.signal, 'SIGKILL', `the push ended before the kill:\n${killed.stdout}${killed.stderr}`);

    const resumed = await ok(['push', d, 'acme.train/resumed']);
    assert.ok(resumed.sentBytes < big.length, `sent ${resumed.sentBytes} of ${big.length}`);
    t.diagnostic(
      `resumed push sent ${resumed.sentBytes} of ${resumed.bytes} bytes (${resumed.skippedBytes} confirmed before)`,
    );
    assert.ok(resumed.skippedBytes > 0);
    assert.equal(resumed.cachedHashBytes, resumed.bytes, 'the digests came from the cache');
    const back = join(root, 'resumed-pulled');
    await ok(['pull', 'acme.train/resumed', back]);
    assert.deepEqual(digestsOf(back), digestsOf(d));
  });

  it('resumes a pull killed -9 with Range', async (t) => {
    const dest = join(root, 'interrupted');
    const part = join(dest, 'model.safetensors.part');
    const run = fabrik(['pull', 'acme.train/tiny', dest, '--parallel', '1', '--limit-rate', '12M', '-o', 'json']);
    await eventually(
      async () => ((statSync(part, { throwIfNoEntry: false })?.size ?? 0) > 4 * MiB ? true : undefined),
      60_000,
      'a .part',
    );
    run.child.kill('SIGKILL');
    const killed = await run.done;
    assert.equal(killed.signal, 'SIGKILL', `the pull ended before the kill:\n${killed.stderr}`);
    const kept = statSync(part).size;
    assert.ok(kept > 0 && kept < 40 * MiB);

    const resumed = await ok(['pull', 'acme.train/tiny', dest]);
    assert.ok(resumed.resumedBytes >= kept - MiB, `resumed ${resumed.resumedBytes}, kept ${kept}`);
    assert.ok(resumed.receivedBytes < resumed.bytes);
    t.diagnostic(
      `resumed pull received ${resumed.receivedBytes} of ${resumed.bytes} bytes (${resumed.resumedBytes} kept)`,
    );
    assert.deepEqual(digestsOf(dest), digestsOf(join(root, 'src')));
  });

  it('a repo that does not exist exits 3 with the server code; a malformed reference exits 2', async () => {
    const r = await fabrik(['pull', 'acme.train/nope', join(root, 'nope'), '-o', 'json']).done;
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(JSON.parse(r.stderr).error.code, /NOT_FOUND|RepoNotFound/i);
    const human = await fabrik(['pull', 'datasets/acme.train/tiny', join(root, 'nope')]).done;
    assert.equal(human.code, 3);
    assert.match(human.stderr, /^error: .*not found/im);
    const bad = await fabrik(['pull', 'acme/tiny', join(root, 'nope')]).done;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad reference "acme\/tiny"/);
    const noOrg = await fabrik(['push', join(root, 'src'), 'nobody.train/x']).done;
    assert.ok(noOrg.code === 3 || noOrg.code === 4, `push into a missing org: ${noOrg.code} ${noOrg.stderr}`);
  });
});
