#!/usr/bin/env node
// Prints the rendezvous environment each rank of a multi-node gang receives.
const keys = ['FABRIK_WORKLOAD_ID', 'FABRIK_PROJECT', 'FABRIK_NUM_NODES', 'MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'NODE_RANK', 'LOCAL_RANK', 'CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES'];
console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]))));
