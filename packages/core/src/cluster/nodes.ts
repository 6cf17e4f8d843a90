import type pg from 'pg';
import { nodeConnectionOptions, type ResolvedConfig } from '../config/index.js';
import { type BreakerState, CircuitBreaker, NodeProber } from '../health/index.js';
import { NodePool, type RemoveReason } from '../pool/index.js';
import { ClusterNode } from '../topology/index.js';

/**
 * What the nodes report to the cluster: pg.Pool's connection events for every physical
 * connection on every node, and each node's breaker transitions.
 */
export interface NodeListener {
  /** A connection was opened (pg.Pool's 'connect': the application's set-up runs here). */
  connectionOpened(client: pg.Client): void | Promise<void>;
  /** A connection left the pool for `reason` (pg.Pool's 'remove'). */
  connectionRemoved(client: pg.Client, reason: RemoveReason): void;
  /** A connection-level error, on an idle connection when `client` is given. */
  connectionError(node: string, error: Error, client: pg.Client | undefined): void;
  /** The node's circuit breaker changed state. */
  breakerChanged(node: string, from: BreakerState, to: BreakerState): void;
}

/** The primary and the replicas of `config`, each with its pool and its circuit breaker. */
export function buildNodes(config: ResolvedConfig, listener: NodeListener): ClusterNode[] {
  return [config.primary, ...config.replicas].map((nodeConfig) => {
    const pool = new NodePool(
      nodeConfig,
      nodeConnectionOptions(nodeConfig),
      { ...config.pool, applicationName: config.applicationName },
      {
        setup: (client) => listener.connectionOpened(client),
        removed: (client, reason) => listener.connectionRemoved(client, reason),
        error: (error, client) => listener.connectionError(nodeConfig.name, error, client),
      },
    );
    const breaker = new CircuitBreaker(config.circuitBreaker, {
      stateChanged: (from, to) => listener.breakerChanged(nodeConfig.name, from, to),
    });
    return new ClusterNode(nodeConfig, pool, breaker);
  });
}

/** One health prober per node, on its own connection (never one of the application's pool). */
export function buildProbers(
  nodes: readonly ClusterNode[],
  config: ResolvedConfig,
): Map<ClusterNode, NodeProber> {
  return new Map(
    nodes.map((node) => [
      node,
      new NodeProber(
        node.name,
        nodeConnectionOptions(node.config),
        config.health.timeoutMs,
        config.applicationName,
      ),
    ]),
  );
}
