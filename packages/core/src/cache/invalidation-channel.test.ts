import { describe, expect, it } from 'vitest';
import { encode } from './invalidation-channel.js';
import { ALL_TABLES } from './tables.js';

describe('NOTIFY payloads', () => {
  const decode = (payloads: string[]) =>
    payloads.map((p) => JSON.parse(p) as { i: string; t?: string[]; g?: string[] });

  it('fits a small change in one message', () => {
    const [one, ...rest] = decode(encode('id', ['kv', 'other'], ['tag']));
    expect(rest).toEqual([]);
    expect(one).toEqual({ i: 'id', t: ['kv', 'other'], g: ['tag'] });
  });

  it('splits a large change into messages under 8000 bytes, losing no name', () => {
    const tables = Array.from({ length: 300 }, (_, i) => `table_with_a_long_name_${i}`);
    const tags = Array.from({ length: 300 }, (_, i) => `tag-ü-${i}`);
    const payloads = encode('id', tables, tags);
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    const messages = decode(payloads);
    expect(messages.flatMap((m) => m.t ?? [])).toEqual(tables);
    expect(messages.flatMap((m) => m.g ?? [])).toEqual(tags);
  });

  it('says "drop everything" when the change would take too many messages, or one name is too long', () => {
    const many = Array.from({ length: 20_000 }, (_, i) => `t${i}`);
    expect(decode(encode('id', many, []))).toEqual([{ i: 'id', t: [ALL_TABLES] }]);
    expect(decode(encode('id', [], ['x'.repeat(9000)]))).toEqual([{ i: 'id', t: [ALL_TABLES] }]);
    expect(decode(encode('id', ['kv', ALL_TABLES], ['a']))).toEqual([{ i: 'id', t: [ALL_TABLES] }]);
  });
});
