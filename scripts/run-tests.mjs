// Runs every *.test.ts under src/ and test/ with Node's own test runner (TypeScript through tsx).
// Arguments filter by path substring: `npm test -- scheduler audit`.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function find(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = [...find('src'), ...find('test')]
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The Slurm dev cluster is one shared machine: two suites on it at once queue each other's jobs
// behind their own (a whole-node job pending ahead of another suite's 1-GPU job, which waits
// for it in turn), so the suites that use it run one at a time, after the others.
const usesSlurm = (f) => readFileSync(f, 'utf8').includes('SLURM_CONF');
const groups = [
  { files: files.filter((f) => !usesSlurm(f)), concurrency: process.env.FABRIK_TEST_CONCURRENCY ?? 2 },
  { files: files.filter(usesSlurm), concurrency: 1 },
].filter((g) => g.files.length > 0);

let status = 0;
for (const g of groups) {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${g.concurrency}`, ...g.files],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
