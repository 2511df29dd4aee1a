// The energy configuration and its rules: TDPs, node shares, environment parsing, grid series.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULTS, defaultEnergySite, energySiteFromEnv, estimatedGpuWatts, nodeShareWatts, tdpOf } from './energy.js';
import { intensityAt, loadGridIntensity, parseGridSeries } from './grid.js';

describe('energy rules', () => {
  it('knows the reference TDPs and a stated default for other models', () => {
    const site = defaultEnergySite();
    assert.equal(tdpOf(site, 'B200'), 1000);
    assert.equal(tdpOf(site, 'RTX PRO 6000'), 600);
    assert.equal(tdpOf(site, 'DEV'), 75);
    assert.equal(tdpOf(site, 'Mystery 9000'), DEFAULTS.unknownTdpWatts);
    assert.equal(estimatedGpuWatts(site, 'B200', 8), 8 * 1000 * DEFAULTS.gpuUtilisation);
  });

  it('shares node power by GPU fraction', () => {
    const site = defaultEnergySite({ nodeWatts: 2000 });
    assert.equal(
      nodeShareWatts(site, [
        { gpus: 8, nodeGpus: 8 },
        { gpus: 2, nodeGpus: 8 },
      ]),
      2500,
    );
    assert.equal(nodeShareWatts(site, [{ gpus: 1, nodeGpus: 0 }]), 0);
  });

  it('reads FABRIK_PUE, FABRIK_GPU_UTILISATION, FABRIK_NODE_WATTS, FABRIK_GPU_TDP, FABRIK_GRID_INTENSITY', () => {
    const site = energySiteFromEnv({
      FABRIK_PUE: '1.1',
      FABRIK_GPU_UTILISATION: '0.9',
      FABRIK_NODE_WATTS: '1500',
      FABRIK_GPU_TDP: 'B200=950, H200=650',
      FABRIK_GRID_INTENSITY: '120',
    });
    assert.equal(site.pue, 1.1);
    assert.equal(site.gpuUtilisation, 0.9);
    assert.equal(site.nodeWatts, 1500);
    assert.equal(tdpOf(site, 'B200'), 950);
    assert.equal(tdpOf(site, 'RTX PRO 6000'), 600);
    assert.equal(intensityAt(site.grid, 0), 120);
    const d = energySiteFromEnv({});
    assert.equal(d.pue, DEFAULTS.pue);
    assert.equal(intensityAt(d.grid, 0), 380);
  });

  it('refuses bad configuration with a clear message', () => {
    assert.throws(() => energySiteFromEnv({ FABRIK_PUE: '0.8' }), /FABRIK_PUE: "0.8" is not a PUE/);
    assert.throws(() => energySiteFromEnv({ FABRIK_GPU_UTILISATION: '2' }), /FABRIK_GPU_UTILISATION/);
    assert.throws(() => energySiteFromEnv({ FABRIK_GPU_TDP: 'B200' }), /FABRIK_GPU_TDP: "B200"/);
    assert.throws(() => loadGridIntensity('/no/such/file.csv'), /neither g\/kWh nor a readable file/);
  });

  it('reads an hourly series file; unlisted hours take the latest listed one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'grid-'));
    const file = join(dir, 'grid.csv');
    writeFileSync(
      file,
      'hour,gCO2perKWh\n2026-12-01T01:00:00Z,200\n2026-12-01T00:00:00Z,250\n\n2026-12-01T03:00:00Z,150\n',
    );
    const g = loadGridIntensity(file);
    assert.equal(intensityAt(g, Date.parse('2026-11-30T12:00:00Z')), 250, 'before the series: its first hour');
    assert.equal(intensityAt(g, Date.parse('2026-12-01T00:30:00Z')), 250);
    assert.equal(intensityAt(g, Date.parse('2026-12-01T02:59:00Z')), 200);
    assert.equal(intensityAt(g, Date.parse('2026-12-05T00:00:00Z')), 150);
    assert.throws(() => parseGridSeries('2026-12-01T00:00:00Z,-3\n', 'g.csv'), /g\.csv:1: expected/);
    assert.throws(() => parseGridSeries('hour,g\n', 'g.csv'), /no hours/);
  });
});
