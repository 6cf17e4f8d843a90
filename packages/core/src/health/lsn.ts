/** A WAL position, `X/Y` in PostgreSQL's text form, as a comparable integer. */
export type Lsn = bigint;

export function parseLsn(text: string | null | undefined): Lsn | undefined {
  if (!text) return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
