// Models and datasets of the registry, read and checked from the command line: `fabrik get
// models|datasets`, `fabrik describe model|dataset REF`, `fabrik verify REF` (offline: the envelope
// is checked here with the platform's public key, and with --dir a pulled directory's files are
// hashed against the signed digests), `fabrik lineage REF`, `fabrik tag|untag REF TAG` and the
// projects' storage quotas (`fabrik get storage-quota`, `fabrik set storage-quota`) and the blob
// stores (`fabrik get blob-stores`).
import type { Command } from 'commander';
import { AppError } from '../../domain/errors.js';
import { type VersionRef, parseVersionRef } from '../../registry/names.js';
import { CliError, q } from '../client.js';
import { loadConfig } from '../config.js';
import { EXIT, age, table } from '../output.js';
import { action, addOutputOption, client, printList, printOne } from '../run.js';
import { refText, repoPath, short, verifyOffline } from './artifacts-verify.js';

type Obj = Record<string, any>;

const REFS = `
References: <org>.<project>/<name>[:<rev>] for a model, datasets/<org>.<project>/<name>[:<rev>]
(or --dataset) for a dataset; <rev> is a branch, a tag or a 40-hex commit id (default main).`;
const EXIT_CODES = `
Exit codes: 0 done, 2 usage error, 3 not found (or not yours to see), 4 not logged in or not
allowed, 5 conflict (e.g. "main" is a branch, not a tag), 7 server unreachable.`;
const VERIFY_HELP = `${REFS}

verify downloads the version's manifest and DSSE envelope, and the platform's public key (or
reads it from --key), once; it checks the Ed25519 signature, that the statement signs this repo,
this commit and these files, here, without trusting the server's verdict. With --dir it hashes
every file of the directory (e.g. one \`fabrik pull\` wrote) and checks each against the signed
SHA-256 and size: a file missing, modified or not covered by the signature fails.

Exit codes: 0 verified, ${EXIT.verifyFailed} verification failed (signature, digest, size or file set), 2 usage
(bad reference, unreadable --key or --dir), 3 not found, 4 not logged in or not allowed,
7 server unreachable.`;

/** A reference from the command line; a bad one is a usage error. */
function refOf(text: string, opts: Obj): VersionRef {
  try {
    return parseVersionRef(text, opts.dataset ? 'dataset' : 'model');
  } catch (err) {
    if (err instanceof AppError) throw CliError.usage(err.message);
    throw err;
  }
}

function projectOf(opts: Obj): string {
  const project = opts.project ?? process.env.FABRIK_PROJECT ?? loadConfig().project;
  if (!project) throw CliError.usage('no project: pass -p org.project or set a context project');
  return project;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** `10GiB`, `1.5 TiB`, `500MB`, `1048576`: bytes. K/M/G/T and KiB… are powers of 1024, KB/MB… of 1000. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?)(B?)$/i.exec(text.trim());
  if (!m) throw CliError.usage(`"${text}" is not a size (e.g. 500MiB, 10GiB, 2TB, 1048576) or none`);
  const power = ' KMGTP'.indexOf((m[2] || ' ').toUpperCase());
  const decimal = m[2] !== '' && m[3] === '' && m[4] !== '';
  const n = Math.round(Number(m[1]) * (decimal ? 1000 : 1024) ** power);
  if (!Number.isSafeInteger(n)) throw CliError.usage(`"${text}" is too large`);
  return n;
}

function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function nodeText(n: Obj): string {
  if (n.kind === 'commit' && n.repo)
    return `${n.repo.kind === 'dataset' ? 'datasets/' : ''}${n.repo.project}/${n.repo.name}@${short(n.commit)} (${n.repo.kind}${n.repo.deleted ? ', deleted' : ''})`;
  if (n.kind === 'attempt' && n.workload)
    return `attempt ${n.workload.name}#${n.attempt} (${n.workload.project}, ${n.workload.status})`;
  return n.label;
}

/** The lineage as an indented tree: upstream (what it came from) and downstream (what came of it). */
export function lineageTree(g: Obj): string {
  const nodes = new Map<string, Obj>(g.nodes.map((n: Obj) => [n.key, n]));
  const ups = new Map<string, string[]>();
  const downs = new Map<string, string[]>();
  for (const e of g.edges as { from: string; to: string }[]) {
    ups.set(e.to, [...(ups.get(e.to) ?? []), e.from]);
    downs.set(e.from, [...(downs.get(e.from) ?? []), e.to]);
  }
  const lines = [nodeText(nodes.get(g.root) ?? { label: g.root })];
  const walk = (key: string, dir: 'up' | 'down', prefix: string, seen: Set<string>) => {
    const next = (dir === 'up' ? ups : downs).get(key) ?? [];
    next.forEach((k, i) => {
      const last = i === next.length - 1;
      const n = nodes.get(k);
      const mark = dir === 'up' ? '<- ' : '-> ';
      lines.push(`${prefix}${last ? '└── ' : '├── '}${mark}${n ? nodeText(n) : k}${seen.has(k) ? ' (see above)' : ''}`);
      if (!seen.has(k)) walk(k, dir, `${prefix}${last ? '    ' : '│   '}`, new Set([...seen, k]));
    });
  };
  const rootUps = ups.get(g.root) ?? [];
  const rootDowns = downs.get(g.root) ?? [];
  // One tree under the root: upstream branches first, then downstream ones.
  const both = [...rootUps.map((k) => ['up', k] as const), ...rootDowns.map((k) => ['down', k] as const)];
  both.forEach(([dir, k], i) => {
    const last = i === both.length - 1;
    const n = nodes.get(k);
    lines.push(`${last ? '└── ' : '├── '}${dir === 'up' ? '<- ' : '-> '}${n ? nodeText(n) : k}`);
    walk(k, dir, last ? '    ' : '│   ', new Set([g.root, k]));
  });
  if (both.length === 0) lines.push('  (no lineage recorded)');
  if (g.truncated) lines.push('  (more nodes than shown: pass a smaller --depth)');
  return lines.join('\n');
}

function evaluation(card: Obj): string | undefined {
  const rs = (card.evalResults ?? []) as Obj[];
  if (rs.length === 0) return undefined;
  return rs
    .map(
      (r) => `${r.metric} ${r.value} on ${r.dataset}${r.split ? ` (${r.split})` : ''}${r.task ? ` [${r.task}]` : ''}`,
    )
    .join('; ');
}

function renderDescribe(ref: VersionRef, repo: Obj, version: Obj | null, versions: Obj[]): string {
  const out: string[] = [];
  const kv = (rows: [string, unknown][], indent = '') => {
    const w = Math.max(...rows.map(([k]) => k.length)) + 2;
    for (const [k, v] of rows)
      out.push(`${indent}${`${k}:`.padEnd(w)}${v === undefined || v === null || v === '' ? '-' : String(v)}`);
  };
  const latest = repo.latest;
  kv([
    ['Name', refText(ref)],
    ['Kind', repo.kind],
    ['Created', `${repo.createdAt} by ${repo.createdBy}`],
    [
      'Latest',
      latest
        ? `${short(latest.id)} (#${latest.seq}, ${age(latest.createdAt)} ago by ${latest.createdBy})`
        : '(no versions yet)',
    ],
    [
      'Storage',
      `${formatBytes(repo.storage.latestBytes)} in the latest version; ${formatBytes(repo.storage.storedBytes)} over ${repo.storage.versions} version(s)`,
    ],
  ]);
  if (version) {
    const v = version.verification;
    const counters = (version.signatures as Obj[]).filter((s) => !s.platform).length;
    out.push('', `Version ${ref.revision} (${short(version.version.id)}): ${version.version.summary}`);
    kv(
      [
        ['Files', `${version.version.files} (${formatBytes(version.version.bytes)})`],
        [
          'Signature',
          v.ok
            ? `ok (platform key ${short(v.signers[0])}${counters ? `, +${counters} countersignature(s)` : ''})`
            : `FAILED: ${v.reason}`,
        ],
        [
          'Producer',
          version.version.producer
            ? `${version.version.producer.workloadId}#${version.version.producer.attempt}`
            : undefined,
        ],
      ],
      '  ',
    );
    const card = (version.card ?? {}) as Obj;
    out.push('', 'Card:');
    kv(
      [
        ['License', card.license],
        ['Base model', card.baseModel?.join(', ')],
        ['Datasets', card.datasets?.join(', ')],
        ['Pipeline tag', card.pipelineTag],
        ['Evaluation', evaluation(card)],
      ],
      '  ',
    );
    const f = version.formatsSummary as Obj;
    out.push('', 'Formats:');
    kv(
      [
        ['Parameters', f.parameters ? `${count(f.parameters)} (${f.parameters})` : undefined],
        ['Formats', f.formats.join(', ')],
        [
          'Dtypes',
          Object.entries(f.dtypes)
            .map(([d, n]) => `${d} ${count(n as number)}`)
            .join(', '),
        ],
        ['Quantization', f.quantization.join(', ')],
      ],
      '  ',
    );
  }
  out.push('', 'Refs:');
  if (repo.refs.length === 0) out.push('  (none)');
  else
    for (const line of table(repo.refs as Obj[], [
      { header: 'NAME', get: (r) => r.name },
      { header: 'KIND', get: (r) => r.kind },
      { header: 'VERSION', get: (r) => short(r.commit) },
      { header: 'UPDATED', get: (r) => age(r.updatedAt) },
    ]).split('\n'))
      out.push(`  ${line}`);
  out.push('', 'Latest versions:');
  if (versions.length === 0) out.push('  (none)');
  else
    for (const line of table(versions, [
      { header: 'VERSION', get: (v) => short(v.id) },
      { header: 'SEQ', get: (v) => v.seq },
      { header: 'CREATED', get: (v) => age(v.createdAt) },
      { header: 'FILES', get: (v) => v.files },
      { header: 'SIZE', get: (v) => formatBytes(v.bytes) },
      { header: 'SUMMARY', get: (v) => v.summary },
    ]).split('\n'))
      out.push(`  ${line}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Commands

export function registerArtifactCommands(program: Command): void {
  for (const kind of ['model', 'dataset'] as const) {
    const group = program
      .command(kind)
      .description(
        `${kind === 'model' ? 'Models' : 'Datasets'} of the registry (also: fabrik get ${kind}s, fabrik describe ${kind} REF)`,
      );
    addOutputOption(
      group
        .command('list')
        .description(`The ${kind}s of a project with their latest versions`)
        .option('-p, --project <project>', "org.project (default: the context's)")
        .addHelpText('after', EXIT_CODES),
    ).action(
      action(async (opts) => {
        const items = await client().all<Obj>(`/api/v1/projects/${q(projectOf(opts))}/${kind}s`);
        printList(opts, items, [
          { header: 'NAME', get: (r) => r.name },
          { header: 'VERSION', get: (r) => short(r.latest?.id) },
          { header: 'UPDATED', get: (r) => age(r.latest?.createdAt ?? r.updatedAt) },
          { header: 'FILES', get: (r) => r.latest?.files ?? 0 },
          { header: 'SIZE', get: (r) => formatBytes(r.latest?.bytes ?? 0) },
          { header: 'CREATED BY', get: (r) => r.createdBy, wide: true },
        ]);
      }),
    );
    addOutputOption(
      group
        .command('describe <ref>')
        .description(`A ${kind}: card, formats, refs, signature verdict and latest versions`)
        .addHelpText('after', `${REFS}\n${EXIT_CODES}`),
    ).action(
      action(async (text: string, opts) => {
        const ref = refOf(text, { dataset: kind === 'dataset' });
        const c = client();
        const repo = await c.get<Obj>(repoPath(ref));
        const version =
          repo.latest || ref.revision !== 'main'
            ? await c.get<Obj>(`${repoPath(ref)}/versions/${q(ref.revision)}`)
            : null;
        const versions = (await c.get<Obj>(`${repoPath(ref)}/versions?limit=5`)).items as Obj[];
        printOne(opts, { repo, version, versions }, () => renderDescribe(ref, repo, version, versions));
      }),
    );
  }

  addOutputOption(
    program
      .command('verify <ref>')
      .description("Check a version's signature here, offline (and with --dir, the files of a pulled directory)")
      .option('--dataset', 'the reference names a dataset')
      .option('--dir <dir>', 'also hash the files of this directory against the signed digests')
      .option('--key <file>', "the platform's public key (PEM) saved earlier, instead of fetching it")
      .addHelpText('after', VERIFY_HELP),
  ).action(
    action(async (text: string, opts) => {
      const report = await verifyOffline(refOf(text, opts), opts);
      printOne(opts, report, () => {
        if (!report.ok) return `verification FAILED for ${report.ref} (${short(report.commit)}): ${report.reason}`;
        const extra = report.signers.length - 1;
        return [
          `verified ${report.ref} (${report.commit})`,
          `  signed by platform key ${report.keyid}${extra > 0 ? ` (+${extra} trusted countersignature(s))` : ''}`,
          `  ${report.files} file(s) signed${report.dir ? `; ${report.dir.checked} checked in ${opts.dir}` : ''}`,
        ].join('\n');
      });
      if (!report.ok) process.exitCode = EXIT.verifyFailed;
    }),
  );

  addOutputOption(
    program
      .command('lineage <ref>')
      .description('What a version came from (datasets, training attempts) and what came of it')
      .option('--dataset', 'the reference names a dataset')
      .option('--up', 'only what it came from')
      .option('--down', 'only what came of it')
      .option('--depth <n>', 'hops to follow (1-20, default 5)')
      .addHelpText('after', `${REFS}\n${EXIT_CODES}`),
  ).action(
    action(async (text: string, opts) => {
      const ref = refOf(text, opts);
      if (opts.up && opts.down) throw CliError.usage('give --up or --down, not both (neither: both ways)');
      const direction = opts.up ? 'up' : opts.down ? 'down' : 'both';
      const depth = opts.depth === undefined ? '' : `&depth=${q(opts.depth)}`;
      const g = await client().get<Obj>(
        `${repoPath(ref)}/versions/${q(ref.revision)}/lineage?direction=${direction}${depth}`,
      );
      printOne(opts, g, () => lineageTree(g));
    }),
  );

  addOutputOption(
    program
      .command('tag <ref> <tag>')
      .description('Point a tag at a version (members; moving an existing tag takes an admin)')
      .option('--dataset', 'the reference names a dataset')
      .addHelpText('after', `${REFS}\n${EXIT_CODES}`),
  ).action(
    action(async (text: string, tag: string, opts) => {
      const ref = refOf(text, opts);
      const r = await client().request<Obj>('PUT', `${repoPath(ref)}/refs/${q(tag)}`, { revision: ref.revision });
      printOne(opts, r, () => `tag ${r.name} -> ${short(r.commit)} on ${refText(ref)}`);
    }),
  );
  addOutputOption(
    program
      .command('untag <ref> <tag>')
      .description('Delete a tag (admins); the version stays')
      .option('--dataset', 'the reference names a dataset')
      .addHelpText('after', `${REFS}\n${EXIT_CODES}`),
  ).action(
    action(async (text: string, tag: string, opts) => {
      const ref = refOf(text, opts);
      await client().request('DELETE', `${repoPath(ref)}/refs/${q(tag)}`);
      printOne(opts, { deleted: `${refText(ref)}:${tag}` }, () => `tag ${tag} deleted from ${refText(ref)}`);
    }),
  );

  const quota = program
    .command('storage-quota')
    .description('Registry storage of a project (also: fabrik get storage-quota, fabrik set storage-quota)');
  const showUsage = (opts: Obj, u: Obj) =>
    printOne(opts, u, () =>
      table(
        [u],
        [
          { header: 'PROJECT', get: (x) => x.project },
          { header: 'LIMIT', get: (x) => (x.limitBytes === null ? 'none' : formatBytes(x.limitBytes)) },
          { header: 'USED', get: (x) => formatBytes(x.usedBytes) },
          { header: 'UPLOADING', get: (x) => formatBytes(x.uploadingBytes) },
        ],
      ),
    );
  addOutputOption(
    quota
      .command('get [project]')
      .description("A project's storage quota and what it uses")
      .option('-p, --project <project>', "org.project (default: the context's)")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (project: string | undefined, opts) => {
      const ref = project ?? projectOf(opts);
      showUsage(opts, await client().get<Obj>(`/api/v1/projects/${q(ref)}/storage-quota`));
    }),
  );
  addOutputOption(
    program
      .command('blob-store')
      .description("The registry's blob stores (operators; also: fabrik get blob-stores)")
      .command('list')
      .description('The blob stores in the order uploads try them, with their regions and what policies read from them')
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (opts) => {
      const { items } = await client().get<{ items: Obj[] }>('/api/v1/blob-stores');
      printList(opts, items, [
        { header: 'NAME', get: (s) => s.name },
        { header: 'KIND', get: (s) => s.kind },
        { header: 'REGION', get: (s) => s.region },
        { header: 'COUNTRY', get: (s) => s.country },
        { header: 'EU', get: (s) => (s.inEU ? 'yes' : 'no') },
        { header: 'DEFAULT', get: (s) => (s.default ? 'yes' : '') },
        { header: 'LOCATION', get: (s) => s.location, wide: true },
      ]);
    }),
  );
  addOutputOption(
    quota
      .command('set <project> <size>')
      .description("Set a project's storage quota (operators): e.g. 500GiB, 2TB, 1048576, or none for the default")
      .addHelpText('after', EXIT_CODES),
  ).action(
    action(async (project: string, size: string, opts) => {
      const limitBytes = size === 'none' ? null : parseSize(size);
      showUsage(
        opts,
        await client().request<Obj>('PUT', `/api/v1/projects/${q(project)}/storage-quota`, { limitBytes }),
      );
    }),
  );
}
