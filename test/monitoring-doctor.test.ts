import { createServer } from 'node:net';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorCommand } from '../packages/cli/src/commands/doctor.js';
import { diagnoseConnectionError } from '../packages/core/src/index.js';

function capture() {
  let text = '';
  return {
    out: {
      write: (t: string) => {
        text += t;
      },
    },
    text: () => text,
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('pgpulse doctor names why a node is down', () => {
  let sandbox: SandboxCluster;
  let urls: Record<string, string>;
  let password: string;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1, auth: 'scram-sha-256' });
    const good = new URL(sandbox.replicas[0]!.url);
    password = decodeURIComponent(good.password);
    const wrongPassword = new URL(good);
    wrongPassword.password = 'not-the-password';
    const unknownDb = new URL(good);
    unknownDb.pathname = '/no_such_db';
    const proxy = await sandbox.proxy('replica1');
    proxy.blackhole();
    urls = {
      'auth-failed': wrongPassword.href,
      refused: `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`,
      'unknown-database': unknownDb.href,
      dns: 'postgres://postgres@no-such-host.invalid:5432/postgres',
      timeout: proxy.url,
    };
  }, 60_000);

  afterAll(async () => {
    await sandbox?.stop();
  });

  it('--json gives each down replica its reason, detail and fix; the primary is up', async () => {
    const out = capture();
    const err = capture();
    const reasons = Object.keys(urls);
    const code = await doctorCommand(
      [sandbox.primary.url, ...reasons.map((r) => urls[r]!)],
      { json: true, timeout: '1500' },
      out.out,
      err.out,
    );
    expect(code).toBe(0);
    const report = JSON.parse(out.text()) as {
      ok: boolean;
      nodes: {
        name: string;
        up: boolean;
        down?: { reason: string; detail: string; fix: string };
      }[];
    };
    expect(report.ok).toBe(true);
    expect(report.nodes[0]).toMatchObject({ up: true });
    expect(report.nodes[0]!.down).toBeUndefined();
    reasons.forEach((reason, i) => {
      const node = report.nodes[i + 1]!;
      expect(node.up, reason).toBe(false);
      expect(node.down?.reason, `${reason}: ${node.down?.detail}`).toBe(reason);
      expect(node.down?.fix.length).toBeGreaterThan(10);
    });
    expect(out.text()).not.toContain(password);
    expect(out.text()).not.toContain('not-the-password');
  }, 60_000);

  it('text output names the reason and the fix under the node', async () => {
    const out = capture();
    const code = await doctorCommand(
      [urls.refused!, urls['auth-failed']!],
      { json: false, timeout: '1500' },
      out.out,
      capture().out,
    );
    expect(code).toBe(1);
    const text = out.text();
    expect(text).toMatch(/refused: .*ECONNREFUSED|refused: .*refused/);
    expect(text).toContain('auth-failed: password authentication failed');
    expect(text).toContain('fix: check the user and password');
    expect(text).toContain('the primary is unreachable');
    expect(text).not.toContain(password);
    expect(text).not.toContain('not-the-password');
  }, 60_000);
});

describe('diagnoseConnectionError', () => {
  it('reads SQLSTATEs and system codes before wording', () => {
    const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    expect(diagnoseConnectionError(withCode('28P01')).reason).toBe('auth-failed');
    expect(diagnoseConnectionError(withCode('3D000')).reason).toBe('unknown-database');
    expect(diagnoseConnectionError(withCode('53300')).reason).toBe('too-many-connections');
    expect(diagnoseConnectionError(withCode('57P03')).reason).toBe('starting-up');
    expect(diagnoseConnectionError(withCode('ECONNREFUSED')).reason).toBe('refused');
    expect(diagnoseConnectionError(withCode('ENOTFOUND')).reason).toBe('dns');
    expect(
      diagnoseConnectionError(new Error('Connection terminated due to connection timeout')).reason,
    ).toBe('timeout');
    expect(diagnoseConnectionError(new Error('something else')).reason).toBe('other');
  });
});
