import { createHash, randomBytes } from 'node:crypto';
import { startTestApp, seedTenant } from '/work/main/test/helpers/harness.js';
const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const t = await startTestApp('sqlite', { registry: { limits: { chunkBytes: MiB, basicMaxBytes: MiB } } });
const a = await seedTenant(t, 'dbg');
const base = await t.app.listen({ host: '127.0.0.1', port: 0 });
const H = { authorization: `Bearer hf_${a.ownerToken}` };
await fetch(`${base}/hub/api/repos/create`, { method: 'POST', headers: { ...H, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'r', organization: a.ref }) });
const content = randomBytes(2.5 * MiB);
const r = await (await fetch(`${base}/hub/${a.ref}/r.git/info/lfs/objects/batch`, { method: 'POST', headers: { ...H, 'content-type': 'application/vnd.git-lfs+json' }, body: JSON.stringify({ operation: 'upload', transfers: ['basic', 'multipart'], objects: [{ oid: sha(content), size: content.length }] }) })).json();
const hdr = r.objects[0].actions.upload.header;
const tooLong = Buffer.concat([content.subarray(0, MiB), Buffer.from("x")]); 
const stream = (bytes: Buffer) => new ReadableStream({ start(c) { for (let at = 0; at < bytes.length; at += 65536) c.enqueue(bytes.subarray(at, at + 65536)); c.close(); } });
for (const [what, url, body] of [["cl", hdr["00001"], tooLong], ["stream", hdr["00001"], stream(tooLong)], ["stream-last", hdr["00003"], stream(content.subarray(0, MiB))], ] as any[] as const) {
  const t0 = Date.now();
  try {
    const res = await fetch(url, { method: 'PUT', body: body as any, duplex: 'half', headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(5000) } as any);
    console.log(what, res.status, await res.text(), Date.now() - t0);
  } catch (e) { console.log(what, 'ERR', (e as Error).message, (e as any).cause?.message, Date.now() - t0); }
}
const small = randomBytes(3000); const r2 = await (await fetch(`${base}/hub/${a.ref}/r.git/info/lfs/objects/batch`, { method: "POST", headers: { ...H, "content-type": "application/vnd.git-lfs+json" }, body: JSON.stringify({ operation: "upload", transfers: ["basic", "multipart"], objects: [{ oid: sha(small), size: small.length }] }) })).json(); const sh = r2.objects[0].actions.upload.href;
{ const t0=Date.now(); try { const res = await fetch(sh, { method: 'PUT', body: stream(Buffer.concat([small, small])) as any, duplex: 'half', headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(5000) } as any);
console.log('small', res.status, await res.text(), Date.now()-t0);} catch (e) { console.log('small ERR', (e as Error).message, Date.now()-t0); } }
await t.close();
