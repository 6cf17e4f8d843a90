import { describe, expect, it } from 'vitest';
import { closeAfterEach } from './teardown.js';

describe('closeAfterEach', () => {
  function harness() {
    let hook: (() => Promise<void>) | undefined;
    const track = closeAfterEach((fn) => {
      hook = fn;
    });
    const ended: string[] = [];
    return { track, ended, run: () => hook!() };
  }

  it('ends the last tracked first, and tracks afresh for the next test', async () => {
    const { track, ended, run } = harness();
    const sandbox = track({ stop: async () => void ended.push('sandbox') });
    track({ close: async () => void ended.push('cluster') });
    expect(sandbox.stop).toBeTypeOf('function');
    await run();
    expect(ended).toEqual(['cluster', 'sandbox']);
    await run();
    expect(ended).toEqual(['cluster', 'sandbox']);
  });

  it('ends the rest when one fails, then throws the first failure', async () => {
    const { track, ended, run } = harness();
    track({ stop: async () => void ended.push('sandbox') });
    track({
      close: async () => {
        throw new Error('close failed');
      },
    });
    await expect(run()).rejects.toThrow('close failed');
    expect(ended).toEqual(['sandbox']);
  });
});
