#!/usr/bin/env node
// The `fabrik` executable: the compiled CLI in dist/ (`npm run build`; `npm start` builds when needed).
import '../dist/cli/entry.js';
