// The simulator's file I/O: read inputs, write outputs. Everything else in src/sim is pure.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseFleetFile, toSchedNodes } from '../fleet/fleet-file.js';
import type { PoolQuota, SchedNode } from '../scheduler/types.js';
import { SimInputError } from './errors.js';
import { renderReport, resultJson } from './report.js';
import type { SimulationResult } from './simulation.js';
import { parseTenantsFile } from './tenants.js';
import { parseTrace, type Trace } from './trace.js';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SimInputError(`${what} ${path}: cannot read (${code})`);
  }
}

/** Fleet file → the scheduler's nodes. Fleet-file errors (with line numbers) pass through. */
export function loadFleet(path: string): SchedNode[] {
  return toSchedNodes(parseFleetFile(readText(path, 'fleet'), path).nodes);
}

export function loadTrace(path: string): Trace {
  const t = parseTrace(readText(path, 'trace'), { source: path });
  return { ...t, name: basename(path) };
}

export function loadTenants(path: string, nodes: readonly SchedNode[]): PoolQuota[] {
  const poolGpus = new Map<string, number>();
  for (const n of nodes) if (n.schedulable) poolGpus.set(n.pool, (poolGpus.get(n.pool) ?? 0) + n.gpus);
  return parseTenantsFile(readText(path, 'tenants'), poolGpus, path);
}

/** Writes DIR/result.json and DIR/report.html; returns their paths. */
export function writeOutputs(dir: string, r: SimulationResult): { result: string; report: string } {
  mkdirSync(dir, { recursive: true });
  const result = join(dir, 'result.json');
  const report = join(dir, 'report.html');
  writeFileSync(result, `${JSON.stringify(resultJson(r), null, 2)}\n`);
  writeFileSync(report, renderReport(r));
  return { result, report };
}
