import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimInputError } from './errors.js';
import { deriveGang, estimateMaxRuntime, formatTrace, parseTrace, splitCsvLine } from './trace.js';

const parseErr = (text: string) => {
  try {
    parseTrace(text, { source: 'trace.csv' });
  } catch (err) {
    assert.ok(err instanceof SimInputError);
    return err.message;
  }
  assert.fail('expected an error');
};

describe('trace parsing', () => {
  it('reads required and optional columns, ignores unknown ones, sorts by submit', () => {
    const t = parseTrace(
      [
        'job_id,submit_s,duration_s,gpus,project,job_type,priority,pool',
        'b,20,100,4,p1,"ResNet, big",high,',
        'a,10,50,16,p2,x,,rtx',
        '',
      ].join('\n'),
      { source: 'x.csv' },
    );
    assert.equal(t.name, 'x.csv');
    assert.deepEqual(
      t.jobs.map((j) => [j.id, j.submitS, j.nodes, j.gpusPerNode, j.priority, j.pool]),
      [
        ['a', 10, 2, 8, 'normal', 'rtx'],
        ['b', 20, 1, 4, 'high', undefined],
      ],
    );
  });

  it('uses nodes and gpus_per_node when given, and checks them against gpus', () => {
    const t = parseTrace('submit_s,duration_s,gpus,project,nodes,gpus_per_node\n0,1,12,p,3,4\n0,1,4,p,,2\n');
    assert.deepEqual(
      t.jobs.map((j) => [j.nodes, j.gpusPerNode]),
      [
        [3, 4],
        [2, 2],
      ],
    );
    assert.match(
      parseErr('submit_s,duration_s,gpus,project,nodes,gpus_per_node\n0,1,12,p,2,4\n'),
      /trace\.csv:2: gpus: 12 is not nodes × gpus_per_node \(2 × 4\)/,
    );
  });

  it('names the line and the field of every error', () => {
    const h = 'submit_s,duration_s,gpus,project\n';
    assert.equal(parseErr(`${h}0,10,1,p\n0,abc,1,p\n`), 'trace.csv:3: duration_s: "abc" is not a number');
    assert.equal(parseErr(`${h}0,10,1.5,p\n`), 'trace.csv:2: gpus: 1.5 is not a positive integer');
    assert.equal(parseErr(`${h}-1,10,1,p\n`), 'trace.csv:2: submit_s: -1 is negative');
    assert.equal(parseErr(`${h}0,0,1,p\n`), 'trace.csv:2: duration_s: 0 must be greater than 0');
    assert.equal(parseErr(`${h}0,10,1,\n`), 'trace.csv:2: project: empty');
    assert.equal(parseErr(`${h}0,10,1`), 'trace.csv:2: project: empty');
    assert.equal(
      parseErr('submit_s,duration_s,project\n0,1,p\n'),
      'trace.csv:1: header lacks the required column "gpus"',
    );
    assert.match(
      parseErr('submit_s,duration_s,gpus,project,priority\n0,1,1,p,urgent\n'),
      /trace\.csv:2: priority: "urgent" is not one of critical/,
    );
    assert.equal(
      parseErr('job_id,submit_s,duration_s,gpus,project\nx,0,1,1,p\nx,0,1,1,p\n'),
      'trace.csv:3: job_id: "x" appears twice',
    );
    assert.equal(parseErr(''), 'trace.csv: empty file, expected a CSV header');
    assert.equal(parseErr(h), 'trace.csv: no jobs after the header');
  });

  it('derives gang shapes from a GPU count', () => {
    assert.deepEqual(deriveGang(1), { nodes: 1, gpusPerNode: 1 });
    assert.deepEqual(deriveGang(8), { nodes: 1, gpusPerNode: 8 });
    assert.deepEqual(deriveGang(12), { nodes: 2, gpusPerNode: 8 });
    assert.deepEqual(deriveGang(64), { nodes: 8, gpusPerNode: 8 });
  });

  it('declares max runtimes as the next round limit, never below the truth', () => {
    assert.equal(estimateMaxRuntime(10), 3600);
    assert.equal(estimateMaxRuntime(3600), 3600);
    assert.equal(estimateMaxRuntime(3601), 4 * 3600);
    assert.equal(estimateMaxRuntime(2 * 86400), 3 * 86400);
    assert.equal(estimateMaxRuntime(40 * 86400), 60 * 86400);
  });

  it('splits quoted CSV fields', () => {
    assert.deepEqual(splitCsvLine('a,"b, c","say ""hi""",d'), ['a', 'b, c', 'say "hi"', 'd']);
  });

  it('round-trips through formatTrace', () => {
    const t = parseTrace('submit_s,duration_s,gpus,project,pool\n5,10,16,p,b200\n0,3,2,q,\n');
    const again = parseTrace(formatTrace(t.jobs));
    assert.deepEqual(
      again.jobs,
      t.jobs.map((j) => ({ ...j })),
    );
  });
});
