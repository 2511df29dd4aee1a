// Generates web/src/api/generated.ts, the console's typed API client types, from the server's own
// /openapi.json: the app is started in-process on a temporary SQLite database, its OpenAPI
// document read, and the paths the console uses turned into TypeScript. `--check` compares with
// the committed file instead of writing it (exit 1 when it drifted).
// Run: node --import tsx scripts/gen-console-client.mjs [--check]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'web/src/api/generated.ts');

/** The operations the console calls; a path missing from /openapi.json is skipped (metering lands later). */
export const USED = [
  ['get', '/api/v1/whoami'],
  ['get', '/api/v1/orgs'],
  ['get', '/api/v1/orgs/{org}/projects'],
  ['get', '/api/v1/projects/{project}/quotas'],
  ['get', '/api/v1/quotas'],
  ['get', '/api/v1/fleet/pools'],
  ['get', '/api/v1/fleet/nodes'],
  ['post', '/api/v1/fleet/nodes/{node}/cordon'],
  ['post', '/api/v1/fleet/nodes/{node}/drain'],
  ['post', '/api/v1/fleet/nodes/{node}/uncordon'],
  ['get', '/api/v1/audit/entries'],
  ['get', '/api/v1/audit/entries/{seq}/receipt'],
  ['post', '/api/v1/projects/{project}/workloads'],
  ['get', '/api/v1/workloads'],
  ['get', '/api/v1/projects/{project}/workloads/{workload}'],
  ['get', '/api/v1/projects/{project}/workloads/{workload}/logs'],
  ['post', '/api/v1/projects/{project}/workloads/{workload}/cancel'],
  ['get', '/api/v1/orgs/{org}/break-glass'],
  ['get', '/api/v1/events/stream'],
  ['get', '/api/v1/projects/{project}/models'],
  ['get', '/api/v1/projects/{project}/models/{name}/versions'],
  ['get', '/api/v1/projects/{project}/models/{name}/versions/{rev}'],
  ['get', '/api/v1/projects/{project}/models/{name}/versions/{rev}/lineage'],
  ['get', '/api/v1/projects/{project}/datasets'],
  ['get', '/api/v1/projects/{project}/datasets/{name}/versions'],
  ['get', '/api/v1/projects/{project}/datasets/{name}/versions/{rev}'],
  ['get', '/api/v1/projects/{project}/datasets/{name}/versions/{rev}/lineage'],
  ['get', '/api/v1/deployments'],
  ['get', '/api/v1/projects/{project}/deployments/{name}'],
  ['get', '/api/v1/projects/{project}/usage/tokens'],
  ['get', '/api/v1/projects/{project}/usage'],
  ['get', '/api/v1/orgs/{org}/usage'],
  ['get', '/api/v1/orgs/{org}/statements/{month}'],
  ['get', '/api/v1/projects/{project}/budget'],
  ['get', '/api/v1/prices'],
  ['get', '/api/v1/session/methods'],
  ['get', '/api/v1/session'],
  ['post', '/api/v1/session'],
  ['delete', '/api/v1/session'],
];

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** A string literal in the repository's style (single quotes). */
const lit = (v) =>
  typeof v === 'string' ? `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'` : JSON.stringify(v);
const key = (k) => (IDENT.test(k) ? k : lit(k));

/** A JSON Schema (the subset TypeBox writes) as a TypeScript type, indented by `pad`. */
export function schemaToTs(s, pad = '') {
  if (s === undefined || s === null || s === true || (typeof s === 'object' && Object.keys(s).length === 0))
    return 'unknown';
  if (s === false) return 'never';
  if ('const' in s) return lit(s.const);
  if (Array.isArray(s.enum)) return s.enum.map(lit).join(' | ');
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    const parts = [...new Set((s.anyOf ?? s.oneOf).map((x) => schemaToTs(x, pad)))];
    return parts.length === 1
      ? parts[0]
      : parts.map((p) => (p.includes('\n') || !p.includes('|') ? p : `(${p})`)).join(' | ');
  }
  if (Array.isArray(s.allOf)) return s.allOf.map((x) => schemaToTs(x, pad)).join(' & ');
  if (Array.isArray(s.type)) return s.type.map((t) => schemaToTs({ ...s, type: t }, pad)).join(' | ');
  switch (s.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const item = schemaToTs(s.items, pad);
      return /^[A-Za-z]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
    }
    default: {
      const props = s.properties ?? {};
      const names = Object.keys(props);
      const extra = s.additionalProperties;
      if (names.length === 0) {
        if (extra === false) return 'Record<string, never>';
        return `Record<string, ${extra && extra !== true ? schemaToTs(extra, pad) : 'unknown'}>`;
      }
      const req = new Set(s.required ?? []);
      const inner = `${pad}  `;
      const lines = names.map((n) => {
        const p = props[n];
        const doc =
          p && typeof p.description === 'string' ? `${inner}/** ${p.description.replaceAll('*/', '* /')} */\n` : '';
        return `${doc}${inner}${key(n)}${req.has(n) ? '' : '?'}: ${schemaToTs(p, inner)};`;
      });
      if (extra && extra !== false) lines.push(`${inner}[key: string]: unknown;`);
      return `{\n${lines.join('\n')}\n${pad}}`;
    }
  }
}

function jsonSchemaOf(content) {
  return content?.['application/json']?.schema;
}

/** The TypeScript source for the used operations of an OpenAPI document. */
export function generate(doc) {
  const out = [
    '// GENERATED by scripts/gen-console-client.mjs from /openapi.json: do not edit by hand.',
    '// Regenerate: node --import tsx scripts/gen-console-client.mjs (a test fails when it drifts).',
    '',
    'export interface Paths {',
  ];
  const byPath = new Map();
  for (const [method, path] of USED) {
    const op = doc.paths?.[path]?.[method];
    if (!op) continue;
    if (!byPath.has(path)) byPath.set(path, []);
    byPath.get(path).push([method, op]);
  }
  for (const [path, ops] of byPath) {
    out.push(`  ${lit(path)}: {`);
    for (const [method, op] of ops) {
      const params = op.parameters ?? [];
      const obj = (where) => {
        const ps = params.filter((p) => p.in === where);
        return ps.length === 0
          ? 'Record<string, never>'
          : schemaToTs(
              {
                type: 'object',
                properties: Object.fromEntries(ps.map((p) => [p.name, p.schema])),
                required: ps.filter((p) => p.required).map((p) => p.name),
              },
              '      ',
            );
      };
      const ok = Object.keys(op.responses ?? {}).find((c) => /^2\d\d$/.test(c));
      const response = ok
        ? ok === '204'
          ? 'void'
          : schemaToTs(jsonSchemaOf(op.responses[ok].content), '      ')
        : 'unknown';
      const body = op.requestBody ? schemaToTs(jsonSchemaOf(op.requestBody.content), '      ') : 'never';
      out.push(
        `    ${method}: {`,
        `      path: ${obj('path')};`,
        `      query: ${obj('query')};`,
        `      body: ${body};`,
        `      response: ${response};`,
        '    };',
      );
    }
    out.push('  };');
  }
  out.push('}', '');
  return out.join('\n');
}

/** /openapi.json of a server started in-process on a temporary data directory. */
export async function openApiDocument() {
  const { startServer } = await import('../src/server.ts');
  const dir = mkdtempSync(join(tmpdir(), 'fabrik-genclient-'));
  const s = await startServer({ host: '127.0.0.1', port: 0, dataDir: dir, localNode: false, devGpus: 0 });
  try {
    return s.app.swagger();
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // In the repository's format (biome), so `npm run lint` and this check agree on the bytes.
  const text = execFileSync(join(ROOT, 'node_modules/.bin/biome'), ['format', `--stdin-file-path=${OUT}`], {
    input: generate(await openApiDocument()),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (process.argv.includes('--check')) {
    const committed = readFileSync(OUT, 'utf8');
    if (committed !== text) {
      process.stderr.write(
        'web/src/api/generated.ts is out of date: run node --import tsx scripts/gen-console-client.mjs\n',
      );
      process.exit(1);
    }
    process.stderr.write('web/src/api/generated.ts is up to date\n');
  } else {
    writeFileSync(OUT, text);
    process.stderr.write(`wrote ${OUT}\n`);
  }
  process.exit(0);
}
