// The console's build: React, into web/dist, assets named by content hash. The audit page reuses
// the CLI's pure proof code from src/audit/; its two Node imports are served in the browser by
// small shims (SHA-256 in JS; Buffer from the `buffer` package).
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [react()],
  resolve: {
    alias: [{ find: /^node:crypto$/, replacement: here('./src/shims/node-crypto.ts') }],
  },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080', '/audit': 'http://127.0.0.1:8080', '/auth': 'http://127.0.0.1:8080' },
  },
});
