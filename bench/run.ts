// Benchmark dispatcher: `npm run bench -- <name> [--json] [bench options]`.
// Each bench/<name>.ts exports `default async function (args: string[]): Promise<Record<string, unknown>>`;
// the result is printed as one JSON object on the last line (with --json) or pretty-printed.
const [name, ...rest] = process.argv.slice(2);
if (!name) {
  console.error('usage: npm run bench -- <name> [--json]   (names: files in bench/)');
  process.exit(2);
}
const json = rest.includes('--json');
const args = rest.filter((a) => a !== '--json');
const mod = await import(`./${name}.ts`).catch((err) => {
  console.error(`unknown benchmark "${name}": ${err.message}`);
  process.exit(2);
});
const result = await mod.default(args);
if (json) console.log(JSON.stringify(result));
else console.log(JSON.stringify(result, null, 2));
