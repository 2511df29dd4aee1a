#!/usr/bin/env node
// A CPU training job in plain Node: a two-layer perceptron learns a noisy XOR-like function of
// generated data. It checkpoints to $FABRIK_WORKLOAD_DIR (kept across attempts), resumes from the
// last checkpoint after a preemption or retry, saves on SIGTERM, and writes the final model file.
// In a multi-node gang every rank computes the same steps (a stand-in for data parallelism) and
// rank 0 alone writes checkpoints and the model, as in torch.distributed training.
//   STEPS=2000 node examples/train/train.js
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.FABRIK_WORKLOAD_DIR ?? join(process.cwd(), '.fabrik', 'train-local');
mkdirSync(dir, { recursive: true });
const STEPS = Number(process.env.STEPS ?? 3000);
const STEP_DELAY_MS = Number(process.env.STEP_DELAY_MS ?? 1);
const CHECKPOINT_EVERY = Number(process.env.CHECKPOINT_EVERY ?? 100);
const HIDDEN = 8;
const checkpointFile = join(dir, 'checkpoint.json');
const modelFile = join(dir, 'model.json');

// Seeded generator: every attempt sees the same data.
let seed = 42;
const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
const data = Array.from({ length: 512 }, () => {
  const x = [rand() * 2 - 1, rand() * 2 - 1];
  return { x, y: x[0] * x[1] > 0 ? 1 : 0 };
});

function init() {
  const r = () => (rand() - 0.5) * 2;
  return { step: 0, w1: Array.from({ length: HIDDEN }, () => [r(), r()]), b1: Array(HIDDEN).fill(0), w2: Array.from({ length: HIDDEN }, r), b2: 0 };
}

let m = existsSync(checkpointFile) ? JSON.parse(readFileSync(checkpointFile, 'utf8')) : init();
if (m.step > 0) console.log(`resuming from checkpoint at step ${m.step} (attempt ${process.env.FABRIK_ATTEMPT ?? '?'})`);

const sigmoid = (z) => 1 / (1 + Math.exp(-z));
function forward(x) {
  const h = m.w1.map((w, j) => Math.tanh(w[0] * x[0] + w[1] * x[1] + m.b1[j]));
  return { h, p: sigmoid(h.reduce((s, hj, j) => s + hj * m.w2[j], m.b2)) };
}
function evaluate() {
  let loss = 0;
  let correct = 0;
  for (const { x, y } of data) {
    const { p } = forward(x);
    loss -= y * Math.log(p + 1e-9) + (1 - y) * Math.log(1 - p + 1e-9);
    correct += (p > 0.5 ? 1 : 0) === y ? 1 : 0;
  }
  return { loss: loss / data.length, accuracy: correct / data.length };
}
const writer = (process.env.RANK ?? '0') === '0';
function save(file, obj) {
  if (!writer) return;
  writeFileSync(`${file}.tmp`, JSON.stringify(obj));
  renameSync(`${file}.tmp`, file);
}

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

const lr = 0.5;
while (m.step < STEPS) {
  // One full-batch gradient step.
  const g = { w1: m.w1.map(() => [0, 0]), b1: Array(HIDDEN).fill(0), w2: Array(HIDDEN).fill(0), b2: 0 };
  for (const { x, y } of data) {
    const { h, p } = forward(x);
    const d = p - y;
    g.b2 += d;
    for (let j = 0; j < HIDDEN; j++) {
      g.w2[j] += d * h[j];
      const dh = d * m.w2[j] * (1 - h[j] * h[j]);
      g.w1[j][0] += dh * x[0];
      g.w1[j][1] += dh * x[1];
      g.b1[j] += dh;
    }
  }
  const n = data.length;
  m.b2 -= (lr * g.b2) / n;
  for (let j = 0; j < HIDDEN; j++) {
    m.w2[j] -= (lr * g.w2[j]) / n;
    m.w1[j][0] -= (lr * g.w1[j][0]) / n;
    m.w1[j][1] -= (lr * g.w1[j][1]) / n;
    m.b1[j] -= (lr * g.b1[j]) / n;
  }
  m.step++;
  if (m.step % CHECKPOINT_EVERY === 0 || stopping) {
    save(checkpointFile, m);
    const { loss, accuracy } = evaluate();
    console.log(`step ${m.step}/${STEPS} loss ${loss.toFixed(4)} accuracy ${(accuracy * 100).toFixed(1)}%`);
  }
  if (stopping) {
    console.log(`SIGTERM: checkpoint saved at step ${m.step}; exiting for requeue`);
    process.exit(143);
  }
  if (STEP_DELAY_MS > 0) await new Promise((r) => setTimeout(r, STEP_DELAY_MS));
}

const final = evaluate();
save(modelFile, { ...m, ...final, finishedAt: new Date().toISOString() });
console.log(`done: ${STEPS} steps, loss ${final.loss.toFixed(4)}, accuracy ${(final.accuracy * 100).toFixed(1)}%; model written to ${modelFile}`);
