// The inference gateway's public face: build one over the ports of ../types.ts, serve it.
export { type Gateway, type GatewayOptions, createGateway } from './gateway.js';
export { type GatewayServer, startGatewayServer } from './server.js';
export { type Limiter, MemoryLimiter, type MemoryLimiterOptions } from './limits.js';
export { RedisLimiter, type RedisLimiterOptions } from './limits-redis.js';
