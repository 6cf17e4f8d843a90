/** One PostgreSQL server of the sandbox: its public view and the sandbox's own record of it. */
import type { ChildProcess } from 'node:child_process';
import type { FaultProxy } from './proxy.js';

/**
 * What a node is now: the `primary`, a streaming `replica`, or `detached` (a former primary
 * once promote() made another node primary, until follow() makes it a standby again).
 */
export type SandboxRole = 'primary' | 'replica' | 'detached';

/** One PostgreSQL server of the sandbox. */
export interface SandboxNode {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** What the sandbox made of it: the primary, a standby, or a former primary after a promotion. */
  readonly role: SandboxRole;
  readonly running: boolean;
  readonly dataDir: string;
  /** Process id of the postmaster while running. */
  readonly pid: number | undefined;
}

/** The sandbox's mutable record of a node (role changes on promotion, process on restart). */
export class Node implements SandboxNode {
  role: SandboxRole;
  process: ChildProcess | undefined;
  replayPaused = false;
  proxyInstance: FaultProxy | undefined;
  readonly host = '127.0.0.1';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    role: SandboxRole,
    private readonly password: string,
  ) {
    this.role = role;
  }

  get url(): string {
    return nodeUrl(this.host, this.port, this.password);
  }

  get running(): boolean {
    return (
      this.process !== undefined &&
      this.process.exitCode === null &&
      this.process.signalCode === null
    );
  }

  get pid(): number | undefined {
    return this.running ? this.process?.pid : undefined;
  }

  toJSON() {
    return {
      name: this.name,
      host: this.host,
      port: this.port,
      role: this.role,
      running: this.running,
    };
  }
}

/** The superuser URL of a server (or of a proxy in front of it). */
export function nodeUrl(host: string, port: number, password: string): string {
  return `postgres://postgres:${password}@${host}:${port}/postgres`;
}
