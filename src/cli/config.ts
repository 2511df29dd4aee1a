// The CLI's saved login: endpoint and API key in a JSON file readable only by its owner (0600).
// FABRIK_ENDPOINT and FABRIK_API_KEY override it; FABRIK_CONFIG moves it.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface CliConfig {
  endpoint?: string;
  apiKey?: string;
  /** Default org and project for commands that take --org/--project. */
  org?: string;
  project?: string;
}

export function configPath(): string {
  if (process.env.FABRIK_CONFIG) return process.env.FABRIK_CONFIG;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'fabrik', 'config.json');
}

export function loadConfig(): CliConfig {
  const p = configPath();
  const saved: CliConfig = existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : {};
  return {
    ...saved,
    endpoint: process.env.FABRIK_ENDPOINT || saved.endpoint,
    apiKey: process.env.FABRIK_API_KEY || saved.apiKey,
  };
}

export function saveConfig(patch: CliConfig): string {
  const p = configPath();
  const saved: CliConfig = existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : {};
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  writeFileSync(p, `${JSON.stringify({ ...saved, ...patch }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}
