// The audit modules use Node's global Buffer; in the browser it comes from the `buffer` package.
// Imported before them, so it is in place when they are evaluated.
import { Buffer } from 'buffer/index.js';

const g = globalThis as { Buffer?: unknown };
g.Buffer ??= Buffer;
