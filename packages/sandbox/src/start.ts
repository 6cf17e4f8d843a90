/** Start-up: a temp folder, data directories copied from the template, free ports, servers. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { findInstallation, type PgInstallation, sandboxRoot } from './binaries.js';
import { startWatchdog, track } from './cleanup.js';
import { SandboxCluster } from './cluster.js';
import { type ClusterOptions, renderConf, renderHba } from './config.js';
import { Node } from './node.js';
import { chownTo, ensureTemplate, type Template } from './template.js';

/**
 * Starts a real PostgreSQL primary with `replicas` streaming standbys on free local ports, in a
 * temp folder removed by stop() (or when the process exits, however it exits).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<SandboxCluster> {
  const replicaCount = options.replicas ?? 2;
  if (!Number.isInteger(replicaCount) || replicaCount < 0) {
    throw new Error(`replicas must be a whole number >= 0 (got ${replicaCount})`);
  }
  const pgInstall = findInstallation(options.pgBin);
  const template: Template = ensureTemplate(pgInstall);
  const dir = mkdtempSync(join(sandboxRoot(), 'pgpulse-sandbox-'));
  if (pgInstall.runAs) chownTo(dir, pgInstall.runAs);
  writeFileSync(join(dir, 'password'), template.password, { mode: 0o600 });
  const watchdog = startWatchdog(dir);

  const names = ['primary', ...Array.from({ length: replicaCount }, (_, i) => `replica${i + 1}`)];
  const ports = await freePorts(names.length);
  const nodes = names.map(
    (name, i) =>
      new Node(
        name,
        ports[i]!,
        join(dir, name),
        i === 0 ? 'primary' : 'replica',
        template.password,
      ),
  );
  const cluster = SandboxCluster.create(
    dir,
    pgInstall,
    nodes,
    watchdog,
    options.startTimeoutMs ?? 30_000,
  );
  track(cluster);
  try {
    copyDataDirs(template.dataDir, nodes, pgInstall);
    const primary = nodes[0]!;
    const replicas = nodes.slice(1);
    await Promise.all(
      nodes.map((node) =>
        appendFile(join(node.dataDir, 'postgresql.conf'), renderConf(node, options, replicas)),
      ),
    );
    const hba = renderHba(options.auth ?? 'trust');
    for (const node of nodes) writeFileSync(join(node.dataDir, 'pg_hba.conf'), hba);
    for (const replica of replicas) {
      writeFileSync(join(replica.dataDir, 'standby.signal'), '');
      await appendFile(
        join(replica.dataDir, 'postgresql.conf'),
        `primary_conninfo = '${cluster.conninfo(primary, replica.name)}'\n`,
      );
    }
    await cluster.launch(primary);
    await Promise.all(replicas.map((r) => cluster.launch(r)));
    await cluster.waitForStreaming(replicas.map((r) => r.name));
    return cluster;
  } catch (err) {
    await cluster.stop().catch(() => cluster.disposeSync());
    throw err;
  }
}

function copyDataDirs(
  templateDir: string,
  nodes: readonly Node[],
  pgInstall: PgInstallation,
): void {
  for (const node of nodes) {
    // cp -a as the server's user keeps ownership and the 0700 mode PostgreSQL insists on.
    const result = spawnSync('cp', ['-a', templateDir, node.dataDir], {
      encoding: 'utf8',
      ...(pgInstall.runAs ? { uid: pgInstall.runAs.uid, gid: pgInstall.runAs.gid } : {}),
    });
    if (result.status !== 0) throw new Error(`Could not copy the data directory: ${result.stderr}`);
  }
}

async function freePorts(count: number): Promise<number[]> {
  // Hold every listener until all ports are known so the same port is not handed out twice.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    return typeof address === 'object' && address ? address.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
