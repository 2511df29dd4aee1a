// The official Hugging Face JS client against fabrik's registry: create a model repo, upload two
// files, list them, download one back, snapshot the whole version. Nothing leaves this server.
//
//   FABRIK_ENDPOINT=http://127.0.0.1:8080 FABRIK_API_KEY=<key> node examples/hub/roundtrip.mjs acme.vision/hub-demo
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRepo, downloadFile, listFiles, snapshotDownload, uploadFiles } from '@huggingface/hub';

const endpoint = process.env.FABRIK_ENDPOINT ?? 'http://127.0.0.1:8080';
const hubUrl = `${endpoint}/hub`;
// The JS client wants tokens that start with hf_; fabrik takes hf_ + its own key.
const accessToken = `hf_${process.env.FABRIK_API_KEY}`;
const name = process.argv[2] ?? 'acme.vision/hub-demo';
const repo = { type: 'model', name };

const weights = randomBytes(48 * 1024 * 1024); // over one 32 MiB part: goes up as multipart LFS
const card =
  '---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n# Hub demo\n\nUploaded with @huggingface/hub.\n';

await createRepo({ repo, accessToken, hubUrl }).catch((e) => {
  if (e.statusCode !== 409) throw e; // already there
});
const out = await uploadFiles({
  repo,
  accessToken,
  hubUrl,
  commitTitle: 'demo weights',
  files: [
    { path: 'README.md', content: new Blob([card]) },
    { path: 'model.bin', content: new Blob([weights]) },
  ],
});
console.log(`committed ${out?.commit.oid}`);
for await (const f of listFiles({ repo, accessToken, hubUrl, recursive: true }))
  console.log(`  ${f.path}  ${f.size} bytes`);
const blob = await downloadFile({ repo, path: 'model.bin', accessToken, hubUrl });
const same = Buffer.from(await blob.arrayBuffer()).equals(weights);
console.log(`model.bin downloaded, identical: ${same}`);
const dir = await snapshotDownload({ repo, accessToken, hubUrl, cacheDir: mkdtempSync(join(tmpdir(), 'hf-cache-')) });
const digest = createHash('sha256')
  .update(readFileSync(join(dir, 'model.bin')))
  .digest('hex');
console.log(`snapshot in ${dir}, model.bin sha256 ${digest}`);
if (!same) process.exit(1);
