import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FleetFileError, type NodeState, parseFleetFile, poolCapacity, toSchedNodes } from './fleet-file.js';

const SMALL = `region: eu-de-muc1
pools:
  - { name: b200, gpuModel: B200, gpuMemoryGiB: 180 }
  - name: rtxpro6000
    gpuModel: RTX PRO 6000
    gpuMemoryGiB: 96
nodeGroups:
  - names: b200-[0001-0064]
    pool: b200
    gpus: 8
    cpu: 112
    ramGiB: 2048
    pod: su[1-2]
    nodesPerPod: 32
    rack: r[01-16]
    nodesPerRack: 4
    ibLeaf: leaf-[01-04]
    ibSpine: spine-1
    labels: { nvlink: 5 }
  - names: rtx-[01-03]
    pool: rtxpro6000
    gpus: 8
    cpu: 64
    ramGiB: 512
    pod: rtx-su1
    rack: rtx-r1
    ibLeaf: rtx-leaf1
    ibSpine: rtx-spine1
`;

/** Parses and returns the error, failing the test when there is none. */
function errorOf(text: string): FleetFileError {
  try {
    parseFleetFile(text);
  } catch (e) {
    assert.ok(e instanceof FleetFileError, String(e));
    assert.equal(e.code, 'FLEET_FILE_INVALID');
    return e;
  }
  assert.fail('expected a FleetFileError');
}

/** SMALL with one line replaced. */
function withLine(from: string, to: string): string {
  assert.ok(SMALL.includes(from), from);
  return SMALL.replace(from, to);
}

describe('parseFleetFile', () => {
  it('expands groups and deals nodes out to pods, racks, leaves and spines', () => {
    const f = parseFleetFile(SMALL);
    assert.equal(f.region, 'eu-de-muc1');
    assert.deepEqual(f.pools[1], { name: 'rtxpro6000', gpuModel: 'RTX PRO 6000', gpuMemoryGiB: 96 });
    assert.equal(f.nodes.length, 67);
    assert.deepEqual(f.nodes[0], {
      name: 'b200-0001',
      pool: 'b200',
      gpuModel: 'B200',
      gpuCount: 8,
      gpuMemoryGiB: 180,
      region: 'eu-de-muc1',
      pod: 'su1',
      rack: 'r01',
      ibLeaf: 'leaf-01',
      ibSpine: 'spine-1',
      cpu: 112,
      ramGiB: 2048,
      labels: { nvlink: '5' },
    });
    const n33 = f.nodes[32]!;
    assert.equal(n33.name, 'b200-0033');
    assert.deepEqual([n33.pod, n33.rack, n33.ibLeaf], ['su2', 'r09', 'leaf-03']);
    assert.deepEqual(f.nodes[66]!.labels, {});
    assert.equal(f.nodes[66]!.gpuModel, 'RTX PRO 6000');
  });

  it('reads JSON and YAML merge keys', () => {
    const json = JSON.stringify({
      pools: [{ name: 'dev', gpuModel: 'DEV', gpuMemoryGiB: 16 }],
      nodeGroups: [
        {
          names: 'n[1-2]',
          pool: 'dev',
          region: 'lab',
          gpus: 1,
          cpu: 4,
          ramGiB: 8,
          pod: 'p',
          rack: 'r',
          ibLeaf: 'l',
          ibSpine: 's',
        },
      ],
    });
    const f = parseFleetFile(json, 'fleet.json');
    assert.equal(f.region, undefined);
    assert.deepEqual(
      f.nodes.map((n) => [n.name, n.region]),
      [
        ['n1', 'lab'],
        ['n2', 'lab'],
      ],
    );
    const merged = parseFleetFile(
      `
region: r
pools: [{ name: p, gpuModel: X, gpuMemoryGiB: 1 }]
shared: &shared { pool: p, gpus: 1, cpu: 1, ramGiB: 1, rack: r1, ibLeaf: l1, ibSpine: s1 }
`.replace('shared: &shared', 'nodeGroups:\n  - names: a[1-2]\n    pod: p1\n    <<: &shared') +
        '  - { <<: *shared, names: b1, pod: p2, rack: r2, ibLeaf: l2 }\n',
    );
    assert.deepEqual(
      merged.nodes.map((n) => n.pod),
      ['p1', 'p1', 'p2'],
    );
  });

  it('parses the Munich example: 1,250 nodes, 10,000 GPUs, pods of at most 32', () => {
    const f = parseFleetFile(
      readFileSync(new URL('../../examples/fleets/munich.yaml', import.meta.url), 'utf8'),
      'munich.yaml',
    );
    assert.equal(f.region, 'eu-de-muc1');
    assert.equal(f.nodes.length, 1250);
    assert.equal(
      f.nodes.reduce((s, n) => s + n.gpuCount, 0),
      10_000,
    );
    const byPool = poolCapacity(f.nodes);
    assert.deepEqual(byPool, { b200: { nodes: 1000, gpusPerNode: 8 }, rtxpro6000: { nodes: 250, gpusPerNode: 8 } });
    const pods = new Map<string, number>();
    for (const n of f.nodes) pods.set(n.pod, (pods.get(n.pod) ?? 0) + 1);
    assert.equal(pods.size, 40);
    for (const [pod, count] of pods) assert.ok(count <= 32, `${pod} has ${count} nodes`);
    const b200 = f.nodes.filter((n) => n.pool === 'b200');
    assert.ok(b200.every((n) => n.gpuMemoryGiB === 180 && n.cpu === 112 && n.ramGiB === 2048));
    // Leaf groups of 16 inside pods; spine groups of four pods.
    assert.equal(new Set(b200.map((n) => n.ibLeaf)).size, 63);
    assert.equal(new Set(b200.map((n) => n.ibSpine)).size, 8);
    assert.equal(new Set(f.nodes.filter((n) => n.pool === 'rtxpro6000').map((n) => n.ibLeaf)).size, 16);
  });

  it('reports YAML syntax errors with line and column', () => {
    const e = errorOf('pools: [\nnodeGroups: {\n');
    assert.match(e.message, /^fleet\.yaml:\d+:\d+: YAML syntax error: /);
    assert.ok(e.line >= 1 && e.column >= 1);
    const dup = errorOf(withLine('    cpu: 112\n', '    cpu: 112\n    cpu: 113\n'));
    assert.match(dup.message, /^fleet\.yaml:12:5: YAML syntax error: Map keys must be unique/);
    assert.equal(dup.line, 12);
  });

  it('reports wrong types and absurd numbers at the value', () => {
    const e = errorOf(withLine('    gpus: 8\n', '    gpus: 64\n'));
    assert.equal(e.message, 'fleet.yaml:10:11: nodeGroups[0].gpus: must be an integer between 1 and 16, got 64');
    assert.deepEqual([e.line, e.column, e.path, e.source], [10, 11, 'nodeGroups[0].gpus', 'fleet.yaml']);
    assert.match(
      errorOf(withLine('    gpus: 8\n', '    gpus: "8"\n')).message,
      /gpus: must be an integer between 1 and 16, got a string \("8"\)/,
    );
    assert.match(
      errorOf(withLine('    ramGiB: 2048\n', '    ramGiB: 2048000\n')).message,
      /nodeGroups\[0\]\.ramGiB: must be an integer/,
    );
    assert.match(errorOf(withLine('    cpu: 64\n', '    cpu: -1\n')).message, /:23:10: nodeGroups\[1\]\.cpu: /);
    assert.match(
      errorOf(withLine('gpuMemoryGiB: 180', 'gpuMemoryGiB: 0.5')).message,
      /:3:49: pools\[0\]\.gpuMemoryGiB: /,
    );
    assert.match(
      errorOf(withLine('    labels: { nvlink: 5 }\n', '    labels: { nvlink: [5] }\n')).message,
      /nodeGroups\[0\]\.labels\.nvlink: must be a string/,
    );
    assert.match(
      errorOf('pools: 3\nnodeGroups: []\n').message,
      /^fleet\.yaml:1:8: pools: must be a list, got a number \(3\)$/,
    );
    assert.match(errorOf('').message, /the file is empty/);
    assert.match(errorOf('- 1\n').message, /^fleet\.yaml:1:1: must be a mapping, got a list$/);
  });

  it('reports unknown and missing fields', () => {
    const e = errorOf(withLine('    gpus: 8\n', '    gpu: 8\n    gpus: 8\n'));
    assert.equal(e.message, 'fleet.yaml:10:5: nodeGroups[0].gpu: unknown field "gpu"; did you mean "gpus"?');
    assert.match(
      errorOf(withLine('region: eu-de-muc1\n', 'region: eu-de-muc1\nsite: x\n')).message,
      /^fleet\.yaml:2:1: site: unknown field "site"; known: region, pools, nodeGroups$/,
    );
    const missing = errorOf(withLine('    pool: rtxpro6000\n', ''));
    assert.equal(missing.message, 'fleet.yaml:20:5: nodeGroups[1]: missing required field "pool"');
  });

  it('rejects node names that are not DNS labels, and bad ranges', () => {
    assert.match(
      errorOf(withLine('rtx-[01-03]', 'RTX-[01-03]')).message,
      /:20:12: nodeGroups\[1\]\.names: node name "RTX-01" is not a DNS label/,
    );
    assert.match(errorOf(withLine('rtx-[01-03]', 'rtx_[01-03]')).message, /node name "rtx_01" is not a DNS label/);
    assert.match(
      errorOf(withLine('rtx-[01-03]', 'rtx-[0010-0001]')).message,
      /nodeGroups\[1\]\.names: range \[0010-0001\] in "rtx-\[0010-0001\]" runs backwards/,
    );
    assert.match(errorOf(withLine('rtx-[01-03]', 'rtx-[01-03')).message, /never closed/);
    assert.match(errorOf(withLine('rtx-[01-03]', 'rtx-[1-999999]')).message, /expands to more than 100000 names/);
  });

  it('reports duplicate node names with both lines', () => {
    const e = errorOf(withLine('rtx-[01-03]', 'b200-00[64-66]'));
    assert.equal(
      e.message,
      'fleet.yaml:20:12: nodeGroups[1].names: duplicate node name "b200-0064": listed also in nodeGroups[0].names at line 8',
    );
    assert.equal(e.line, 20);
    assert.match(
      errorOf(withLine('rtx-[01-03]', 'rtx-[01-03,02]')).message,
      /duplicate node name "rtx-02": listed twice in this group/,
    );
  });

  it('rejects unknown and duplicate pools', () => {
    const e = errorOf(withLine('    pool: rtxpro6000\n', '    pool: rtx6000\n'));
    assert.equal(e.message, 'fleet.yaml:21:11: nodeGroups[1].pool: unknown pool "rtx6000"; known: b200, rtxpro6000');
    assert.match(
      errorOf(withLine('  - name: rtxpro6000\n', '  - name: b200\n')).message,
      /:4:11: pools\[1\]\.name: duplicate pool name "b200"/,
    );
  });

  it('checks that topology ranges fit the node count and form a tree', () => {
    assert.match(
      errorOf(withLine('rack: r[01-16]', 'rack: r[01-15]')).message,
      /:15:11: nodeGroups\[0\]\.rack: 15 rack ids for 64 nodes at 4 per rack; need 16/,
    );
    assert.match(
      errorOf(withLine('ibLeaf: leaf-[01-04]', 'ibLeaf: leaf-[01-03]')).message,
      /64 nodes do not split evenly over 3 leaf ids; set nodesPerLeaf/,
    );
    assert.match(
      errorOf(withLine('ibLeaf: leaf-[01-04]', 'ibLeaf: leaf-[01-06]\n    nodesPerLeaf: 12')).message,
      /nodeGroups\[0\]\.ibLeaf: leaf "leaf-03" would be in pod "su1" .* and in pod "su2"; a leaf belongs to one pod/,
    );
    assert.match(
      errorOf(withLine('    rack: rtx-r1\n', '    rack: r01\n')).message,
      /nodeGroups\[1\]\.rack: rack "r01" would be in pod "su1" \(nodeGroups\[0\]\.rack, line 15\) and in pod "rtx-su1"/,
    );
    assert.match(errorOf(withLine('pod: rtx-su1', 'pod: su1')).message, /pod "su1" would be in spine "spine-1"/);
    assert.match(errorOf(withLine('pod: su[1-2]', 'pod: Su[1-2]')).message, /pod id "Su1" is not a DNS label/);
  });

  it('needs a region for every node', () => {
    assert.match(errorOf(SMALL.replace('region: eu-de-muc1\n', '')).message, /nodeGroups\[0\]: no region/);
  });
});

describe('toSchedNodes', () => {
  it('maps nodes and marks only ready ones schedulable', () => {
    const { nodes } = parseFleetFile(SMALL);
    const states = new Map<string, NodeState>([
      ['b200-0002', 'cordoned'],
      ['b200-0003', 'draining'],
      ['b200-0004', 'down'],
      ['b200-0005', 'ready'],
    ]);
    const sched = toSchedNodes(nodes, states);
    assert.deepEqual(sched[0], {
      name: 'b200-0001',
      pool: 'b200',
      gpuModel: 'B200',
      pod: 'su1',
      rack: 'r01',
      leaf: 'leaf-01',
      spine: 'spine-1',
      gpus: 8,
      labels: { nvlink: '5' },
      schedulable: true,
    });
    assert.deepEqual(
      sched.slice(0, 5).map((n) => n.schedulable),
      [true, false, false, false, true],
    );
    assert.ok(toSchedNodes(nodes).every((n) => n.schedulable));
  });
});

it('refuses absurdly deep nesting before the YAML parser sees it (it would exhaust the stack)', () => {
  for (const text of [
    '- '.repeat(5000) + 'x',
    `${'['.repeat(1000)}${']'.repeat(1000)}`,
    `a:\n${'  '.repeat(200)}b: 1\n`,
  ]) {
    assert.throws(() => parseFleetFile(text, 'deep.yaml'), /deep\.yaml:\d+:1: nested more than 64 levels deep/);
  }
});
