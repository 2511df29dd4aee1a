// Process entry of the `fabrik` command (bin/fabrik.js loads the compiled form of this file).
import { main } from './main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
