// The inference context's state unions, here so that the store's table types and the services
// share one definition (src/inference/types.ts re-exports them).

export const RUNTIMES = ['llamacpp', 'vllm', 'external'] as const;
export type Runtime = (typeof RUNTIMES)[number];

/**
 * A replica as the control plane knows it:
 *   pending   its workload waits for the scheduler
 *   starting  launched, its health check has not passed yet
 *   ready     in rotation
 *   unhealthy failed health checks or was reported unreachable: out of rotation, being replaced
 *   stopping  scaled down or undeployed: no new requests, its workload is being cancelled
 */
export const REPLICA_STATES = ['pending', 'starting', 'ready', 'unhealthy', 'stopping'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];
