// attemptUsage by hand: hour splits, running attempts, measured power (held, then estimated),
// the per-node share, PUE and grid intensity, with answers worked out on paper.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SAMPLE_HOLD_MS, attemptUsage } from './attempt-usage.js';
import { defaultEnergySite } from './energy.js';
import { constantGrid, parseGridSeries } from './grid.js';
import { attemptWatts, parsePowerDraw } from './power-sample.js';
import type { AttemptFacts } from './types.js';

const T = (s: string) => Date.parse(s);
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} ≠ ${b}`);

// PUE 1.5, 50 % utilisation, 1 kW per node, 400 g/kWh: easy numbers.
const site = defaultEnergySite({ pue: 1.5, gpuUtilisation: 0.5, nodeWatts: 1000, grid: constantGrid(400) });
const b200x8 = (over: Partial<AttemptFacts> = {}): AttemptFacts => ({
  startedAt: T('2026-12-01T10:30:00Z'),
  endedAt: T('2026-12-01T12:15:00Z'),
  gpuModel: 'B200',
  nodes: [{ node: 'dgx-001', gpus: 8, nodeGpus: 8 }],
  samples: [],
  ...over,
});

describe('attemptUsage', () => {
  it('splits an attempt by hour and estimates from TDP × utilisation', () => {
    const u = attemptUsage(b200x8(), site);
    assert.deepEqual(
      u.hours.map((h) => [h.hour, h.gpuSeconds]),
      [
        ['2026-12-01T10:00:00.000Z', 8 * 1800],
        ['2026-12-01T11:00:00.000Z', 8 * 3600],
        ['2026-12-01T12:00:00.000Z', 8 * 900],
      ],
    );
    assert.equal(u.gpuSeconds, 8 * 6300);
    // (8 × 1000 W × 0.5 + 1000 W node) × 1.5 = 7.5 kW over 1.75 h = 13,125 Wh; × 0.4 g/Wh = 5,250 g.
    close(u.energyWh, 13_125, 'energy');
    close(u.hours[1]!.energyWh, 7500, 'a full hour');
    close(u.co2g, 5250, 'co2');
    assert.equal(u.estimated, true);
    assert.ok(u.hours.every((h) => h.estimated));
  });

  it('ends a running attempt at now, and needs now for it', () => {
    const running = b200x8({ endedAt: undefined });
    assert.throws(() => attemptUsage(running, site), RangeError);
    const u = attemptUsage(running, site, T('2026-12-01T11:00:00Z'));
    assert.equal(u.gpuSeconds, 8 * 1800);
    assert.equal(u.hours.length, 1);
  });

  it('an attempt that never started, or ended as it started, used nothing', () => {
    assert.equal(attemptUsage(b200x8({ startedAt: Number.NaN }), site).gpuSeconds, 0);
    assert.equal(attemptUsage(b200x8({ endedAt: T('2026-12-01T10:30:00Z') }), site).hours.length, 0);
  });

  it('shares the node power by the fraction of GPUs held, and spans a month boundary', () => {
    const u = attemptUsage(
      {
        startedAt: T('2026-11-30T23:45:00Z'),
        endedAt: T('2026-12-01T00:30:00Z'),
        gpuModel: 'RTX PRO 6000',
        nodes: [{ node: 'rtx-01', gpus: 2, nodeGpus: 8 }],
        samples: [],
      },
      site,
    );
    assert.deepEqual(
      u.hours.map((h) => h.hour),
      ['2026-11-30T23:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    );
    // (2 × 600 × 0.5 + 1000 × 2/8) × 1.5 = 1275 W; 15 min → 318.75 Wh, 30 min → 637.5 Wh.
    close(u.hours[0]!.energyWh, 318.75, 'November');
    close(u.hours[1]!.energyWh, 637.5, 'December');
    assert.equal(u.hours[0]!.gpuSeconds, 2 * 900);
  });

  it('uses measured power: each sample holds until the next, for at most SAMPLE_HOLD_MS', () => {
    const start = T('2026-12-01T10:00:00Z');
    const u = attemptUsage(
      b200x8({
        startedAt: start,
        endedAt: start + 3600_000,
        nodes: [{ node: 'dgx-001', gpus: 8, nodeGpus: 8 }],
        samples: [
          { at: start + 60_000, watts: 6000 }, // minute 1..3
          { at: start + 180_000, watts: 3000 }, // minute 3..8 (held 5 min), then estimated
        ],
      }),
      defaultEnergySite({ pue: 1, nodeWatts: 0, gpuUtilisation: 0.5, grid: constantGrid(0) }),
    );
    // estimate 4000 W: minute 0..1 and 8..60 = 53 min; 6000 W × 2 min; 3000 W × 5 min.
    const wh = (4000 * 53 + 6000 * 2 + 3000 * (SAMPLE_HOLD_MS / 60_000)) / 60;
    close(u.energyWh, wh, 'measured energy');
    assert.equal(u.estimated, true, 'partly estimated');
    const full = attemptUsage(
      b200x8({
        startedAt: start,
        endedAt: start + 600_000,
        samples: [
          { at: start, watts: 5000 },
          { at: start + 300_000, watts: 5000 },
        ],
      }),
      site,
    );
    assert.equal(full.estimated, false);
    close(full.energyWh, ((5000 + 1000) * 1.5 * 600) / 3600, 'fully measured');
  });

  it('rolling up hour by hour equals rolling up at once (clipped windows)', () => {
    const start = T('2026-12-01T10:20:00Z');
    const samples = Array.from({ length: 30 }, (_, i) => ({ at: start + i * 240_000, watts: 5000 + i * 10 }));
    const whole = attemptUsage(b200x8({ startedAt: start, endedAt: start + 7200_000, samples }), site);
    const second = attemptUsage(
      b200x8({ startedAt: T('2026-12-01T11:00:00Z'), endedAt: T('2026-12-01T12:00:00Z'), samples }),
      site,
    );
    assert.equal(second.hours[0]!.energyWh, whole.hours[1]!.energyWh);
  });

  it('takes CO2 from an hourly series', () => {
    const grid = parseGridSeries('hour,gCO2perKWh\n2026-12-01T10:00:00Z,100\n2026-12-01T11:00:00Z,300\n');
    const u = attemptUsage(b200x8(), { ...site, grid });
    close(u.hours[0]!.co2g, (u.hours[0]!.energyWh / 1000) * 100, '10h');
    close(u.hours[1]!.co2g, (u.hours[1]!.energyWh / 1000) * 300, '11h');
    close(u.hours[2]!.co2g, (u.hours[2]!.energyWh / 1000) * 300, '12h: the latest listed hour holds');
  });
});

describe('nvidia-smi power samples', () => {
  it('parses a recorded B200 sample and sums an attempt’s GPUs', () => {
    const r = parsePowerDraw(readFileSync('test/fixtures/metering/nvidia-smi-power-b200.txt', 'utf8'));
    assert.equal(r.size, 8);
    assert.equal(r.get(0), 742.31);
    close(attemptWatts(r, [0, 1, 2, 3])!, 742.31 + 751.08 + 738.9 + 760.12, 'four GPUs');
    assert.equal(attemptWatts(r, [8]), undefined);
  });

  it('leaves out GPUs without a reading, and refuses garbage', () => {
    const r = parsePowerDraw(readFileSync('test/fixtures/metering/nvidia-smi-power-na.txt', 'utf8'));
    assert.deepEqual([...r], [[0, 92.14]]);
    assert.equal(attemptWatts(r, [0, 1]), undefined, 'one GPU unmeasured: not a measurement');
    assert.throws(() => parsePowerDraw('GPU 0: 100 W\n'), /unexpected/);
    assert.throws(() => parsePowerDraw('0, hot\n'), /unexpected/);
  });
});
