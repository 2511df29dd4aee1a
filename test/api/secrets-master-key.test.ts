// The server's master key at start: made on first start (0600), refused when others may read it,
// before the database is opened.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

describe('server start and the master key', () => {
  const opts = (dataDir: string) => ({ host: '127.0.0.1', port: 0, dataDir, localNode: false, devGpus: 0 });

  it('creates <dataDir>/master.key (0600) on first start and refuses one others may read', async () => {
    const { startServer } = await import('../../src/server.js');
    const dir = mkdtempSync(join(tmpdir(), 'fabrik-mk-srv-'));
    // The environment's key would win over the file.
    const saved = process.env.FABRIK_MASTER_KEY;
    delete process.env.FABRIK_MASTER_KEY;
    try {
      const server = await startServer(opts(dir));
      await server.close();
      const file = join(dir, 'master.key');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(file).size, 32);

      const bare = mkdtempSync(join(tmpdir(), 'fabrik-mk-srv-'));
      copyFileSync(file, join(bare, 'master.key'));
      chmodSync(join(bare, 'master.key'), 0o644);
      await assert.rejects(startServer(opts(bare)), /master key file .* readable .* by group or others .* chmod 600/);
      assert.ok(!existsSync(join(bare, 'fabrik.db')), 'refused before the database was opened');
      rmSync(bare, { recursive: true, force: true });
    } finally {
      if (saved !== undefined) process.env.FABRIK_MASTER_KEY = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
